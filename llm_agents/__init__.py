"""equilibria.llm_agents: language-model policies, preference-optimization losses, game agents."""
