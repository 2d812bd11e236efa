"""Dense CRF refinement and the label-update rule: numpy only, no network code.

`crf` is the fully connected CRF of the paper's eqs. 3-4; `update_rule` is Algorithm 1's K1, K2
and keep-or-replace (eqs. 5, 6); `tune` searches the CRF's parameters and refines prediction
folders (`cgc crf tune`, `cgc crf refine`). The trainer's CRF workers import these without
loading torch.
"""
