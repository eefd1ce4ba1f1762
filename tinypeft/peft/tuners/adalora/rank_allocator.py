"""AdaLoRA's RankAllocator: which singular triplets (row i of lora_A, lora_E[i], column i of lora_B) to keep.

Importance of one entry (every step before the final phase):  I = |p * grad|
    sensitivity  Ibar <- beta1 Ibar + (1 - beta1) I
    uncertainty  Ubar <- beta2 Ubar + (1 - beta2) |I - Ibar|
    score s = Ibar * Ubar
Score of triplet i of a layer: s(E_i) + mean_j s(A_ij) + mean_j s(B_ji).

Budget (the number of triplets kept over all layers), at step t, with b0 = init_r * layers and bT = target_r * layers:
    t <= tinit: b0 (no masking);   t > total_step - tfinal: bT;
    between: bT + (b0 - bT) * (1 - (t - tinit) / (total_step - tfinal - tinit))^3, masking when t % deltaT == 0.
Masking zeroes lora_E of every triplet whose score is <= the (b0 - budget)-th smallest score; the mask of the last
allocation becomes config.rank_pattern ({"<path>.lora_E.<adapter>": [kept?, ...]}), which PEFT saves with the adapter.
Everything here is bookkeeping on arrays (no autograd): PEFT's numerics in NumPy.
"""
import numpy as np

from ....autograd import no_grad


class RankAllocator:
    def __init__(self, model, peft_config, adapter_name):
        self.peft_config, self.adapter_name = peft_config, adapter_name
        self.beta1, self.beta2 = peft_config.beta1, peft_config.beta2
        self.reset_ipt()
        self._set_budget_scheduler(model)

    def set_total_step(self, total_step):
        self.peft_config.total_step = total_step

    def reset_ipt(self):
        self.ipt, self.exp_avg_ipt, self.exp_avg_unc = {}, {}, {}

    def _set_budget_scheduler(self, model):
        self.init_bgt = 0
        names = set()
        for n, p in model.named_parameters():
            if f"lora_A.{self.adapter_name}" in n:
                self.init_bgt += p.shape[0]
                names.add(n.replace("lora_A", "%s"))
        self.name_set = sorted(names)
        self.target_bgt = self.peft_config.target_r * len(self.name_set)

    def budget_schedule(self, step):
        c = self.peft_config
        if step <= c.tinit:
            return self.init_bgt, False
        if step > c.total_step - c.tfinal:
            return self.target_bgt, True
        mul_coeff = 1 - (step - c.tinit) / (c.total_step - c.tfinal - c.tinit)
        budget = int((self.init_bgt - self.target_bgt) * (mul_coeff ** 3) + self.target_bgt)
        return budget, step % c.deltaT == 0

    def update_ipt(self, model):
        for n, p in model.named_parameters():
            if "lora_" not in n or self.adapter_name not in n:
                continue
            if n not in self.ipt:
                self.ipt[n] = np.zeros_like(p.data)
                self.exp_avg_ipt[n] = np.zeros_like(p.data)
                self.exp_avg_unc[n] = np.zeros_like(p.data)
            if p.grad is None:
                raise ValueError(f"AdaLoRA's update_and_allocate needs the gradients: {n} has none. Call it after "
                                 "loss.backward() and before optimizer.zero_grad().")
            self.ipt[n] = np.abs(p.data * np.asarray(p.grad.data))
            self.exp_avg_ipt[n] = self.beta1 * self.exp_avg_ipt[n] + (1 - self.beta1) * self.ipt[n]
            self.exp_avg_unc[n] = (self.beta2 * self.exp_avg_unc[n]
                                   + (1 - self.beta2) * np.abs(self.ipt[n] - self.exp_avg_ipt[n]))

    def _element_score(self, n):
        return self.exp_avg_ipt[n] * self.exp_avg_unc[n]

    def mask_to_budget(self, model, budget):
        value_ipt, vector_ipt, triplet_ipt = {}, {}, {}
        for n, p in model.named_parameters():
            if f"lora_A.{self.adapter_name}" in n:
                vector_ipt.setdefault(n.replace("lora_A", "%s"), []).append(
                    self._element_score(n).mean(axis=1, keepdims=True))          # [r, 1]
            if f"lora_B.{self.adapter_name}" in n:
                vector_ipt.setdefault(n.replace("lora_B", "%s"), []).append(
                    self._element_score(n).mean(axis=0).reshape(-1, 1))          # [r, 1]
            if f"lora_E.{self.adapter_name}" in n:
                value_ipt[n.replace("lora_E", "%s")] = self._element_score(n)   # [r, 1]
        all_score = []
        for name_m, vectors in vector_ipt.items():
            sum_ipt = value_ipt[name_m].reshape(-1) + np.concatenate(vectors, axis=1).sum(axis=1)
            triplet_ipt[name_m % "lora_E"] = sum_ipt.reshape(-1, 1)
            all_score.append(sum_ipt)
        k = self.init_bgt - budget
        if k < 1:
            raise ValueError(f"AdaLoRA: the budget {budget} leaves no rank to mask (initial budget {self.init_bgt}).")
        scores = np.concatenate(all_score)
        threshold = np.partition(scores, k - 1)[k - 1]  # torch.kthvalue: the k-th smallest
        rank_pattern = {}
        with no_grad():
            for n, p in model.named_parameters():
                if f"lora_E.{self.adapter_name}" in n:
                    masked = triplet_ipt[n] <= threshold
                    p.data = np.where(masked, np.zeros((), p.dtype), p.data)
                    rank_pattern[n] = (~masked).reshape(-1).tolist()
        return rank_pattern

    def update_and_allocate(self, model, global_step, force_mask=False):
        if global_step < self.peft_config.total_step - self.peft_config.tfinal:
            self.update_ipt(model)
        budget, mask_ind = self.budget_schedule(global_step)
        rank_pattern = self.mask_to_budget(model, budget) if (mask_ind or force_mask) else None
        return budget, rank_pattern

    def mask_using_rank_pattern(self, model, rank_pattern):
        truncated = self.adapter_name not in next(iter(rank_pattern.keys()))
        with no_grad():
            for n, p in model.named_parameters():
                if f"lora_E.{self.adapter_name}" in n:
                    key = n.replace(f".{self.adapter_name}", "") if truncated else n
                    keep = np.asarray(rank_pattern[key], dtype=bool).reshape(-1, 1)
                    p.data = np.where(keep, p.data, np.zeros((), p.dtype))
