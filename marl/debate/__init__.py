"""Debate reward models (Sukovic & Radanovic, ICLR 2024, "Reward Design for Justifiable Sequential
Decision-Making"): a judge trained on clinician preferences scores decisions on the evidence two
debaters reveal, and the debate's outcome becomes part of a policy's reward.

    from equilibria.marl.debate.judge import JudgeConfig, train_judge
    judge = train_judge(features, clinician, occupancy, JudgeConfig(epochs=10), seed=0)
    scores = judge(values, mask, decisions)  # the debate game's judge protocol

    from equilibria.marl.debate.debaters import DebatersConfig, train_debaters, train_confuser
    debaters = train_debaters(batched_debate, DebatersConfig(updates=1000), seed=0)  # self-play PPO
    confuser = train_confuser(batched_debate, debaters, side=0, seed=0)  # refutation-robustness test
"""
