"""ccpo_agents: LLM policies, credit assignment, advantage estimators and losses, trainer and CLI."""
