"""Bias and fairness probes: stereotype likelihood benchmarks (CrowS-Pairs, StereoSet), demographic
counterfactual swaps, group gaps in generations (BOLD, HONEST), classifier fairness, and training-data skew.

Every pair, swap and generation is stored as a record tagged with ``attribute``/``group`` so reports and
diagnosis can slice by demographic group. Term lists and swaps live in :mod:`lmcritic.lexicon`.
"""
