"""Lifelong multi-agent pathfinding: the Follower's planner, rule-based controllers (planner alone, PIBT) and the learned follower (Learn to Follow)."""
