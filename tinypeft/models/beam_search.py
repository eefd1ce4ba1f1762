"""Beam search: keep the num_beams best partial sequences of each prompt, by summed log-probability.

transformers' vectorised beam search (GenerationMixin._beam_search, 4.50 onwards), step for step, in NumPy
and float32 as there, so the same beams win on the same scores. Per prompt, each step:

1. Every running beam's log-probabilities over the vocabulary, processed (repetition penalty, ...), are
   added to the beam's score: num_beams * V candidates [B, num_beams * V].
2. The best `beams_to_keep` = max(2, 1 + #eos) * num_beams candidates are taken (enough that num_beams of
   them are not eos even if the best ones all are).
3. Candidates that end a sequence (eos, max_length, a stop string) among the first num_beams are scored
   score / generated_length ** length_penalty and merged into the num_beams best finished hypotheses.
4. The num_beams best candidates that do not end become the running beams; the key/value cache is
   reordered to follow them.

It stops when no running beam can still beat the worst kept finished hypothesis (early_stopping=False
estimates that with the current length, "never" with the longest possible one for length_penalty > 0),
when every prompt has num_beams finished hypotheses (early_stopping=True), or at max_length.
A large negative (-1e9) stands in for "impossible", as in transformers.
"""
import numpy as np

NEG = np.float32(-1.0e9)


def _topk(x, k):
    """(values, indices) of the k largest along the last axis, largest first."""
    idx = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(x, idx, axis=-1), idx


def _gather(x, idx):
    """x [B, K, ...], idx [B, J] -> x[b, idx[b, j], ...]: [B, J, ...]."""
    return np.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=1)


def _log_softmax(x):
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def beam_search(step, input_ids, processors, criteria, gc, eos, pad, max_length, rng=None):
    """input_ids [B * num_beams, T] (each prompt repeated) -> [B * num_return_sequences, T + generated].

    step(ids) gives float32 next-token logits [B * num_beams, V] and step.reorder(rows) makes the cache
    follow the beams. With gc.do_sample the candidates are drawn (without replacement) instead of taken best.
    """
    num_beams, length_penalty, early_stopping = gc.num_beams, float(gc.length_penalty), gc.early_stopping
    flat_batch, prompt_len = input_ids.shape
    B = flat_batch // num_beams
    beams_to_keep = max(2, 1 + len(eos)) * num_beams
    top_num_beam_mask = np.arange(beams_to_keep) < num_beams
    # transformers fills unused columns with pad (eos[0] when pad is 0), -1 without eos
    fill = (pad if pad else eos[0]) if eos else -1

    running_sequences = np.full((B, num_beams, max_length), fill, dtype=np.int64)
    running_sequences[:, :, :prompt_len] = input_ids.reshape(B, num_beams, prompt_len)
    sequences = running_sequences.copy()  # the finished hypotheses
    running_scores = np.zeros((B, num_beams), np.float32)
    running_scores[:, 1:] = NEG  # all beams start equal: only the first may expand at step one
    beam_scores = np.full((B, num_beams), NEG, np.float32)
    is_sent_finished = np.zeros((B, num_beams), bool)
    improvable = np.ones((B, 1), bool)  # the early-stop heuristic not yet satisfied
    running_beam_indices = np.full((B, num_beams, max_length - prompt_len), -1, np.int64)
    beam_indices = running_beam_indices.copy()
    batch_offset = (np.arange(B) * num_beams)[:, None]

    cur_len = prompt_len
    while True:
        flat = running_sequences[:, :, :cur_len].reshape(B * num_beams, cur_len)
        log_probs = processors(flat, _log_softmax(step(flat)))  # [B * num_beams, V]
        V = log_probs.shape[-1]
        log_probs = (log_probs.reshape(B, num_beams, V) + running_scores[:, :, None]).reshape(B, num_beams * V)

        # 2. the best beams_to_keep continuations
        if gc.do_sample:
            # Gumbel top-k draws k candidates without replacement, as torch.multinomial(softmax(.), k) does
            keys = log_probs.astype(np.float64) - np.log(-np.log(rng.random(log_probs.shape)))
            idx = _topk(keys, beams_to_keep)[1]
            topk_log_probs = np.take_along_axis(log_probs, idx, axis=1)
            topk_log_probs, order = _topk(topk_log_probs, beams_to_keep)
            idx = np.take_along_axis(idx, order, axis=1)
        else:
            topk_log_probs, idx = _topk(log_probs, beams_to_keep)
        from_beam, token = idx // V, idx % V  # [B, beams_to_keep]
        topk_sequences = _gather(running_sequences, from_beam)
        topk_sequences[:, :, cur_len] = token
        topk_beam_indices = _gather(running_beam_indices, from_beam)
        topk_beam_indices[:, :, cur_len - prompt_len] = from_beam + batch_offset

        hits = criteria(topk_sequences[:, :, :cur_len + 1].reshape(B * beams_to_keep, cur_len + 1))
        hits = hits.reshape(B, beams_to_keep)

        # 4. the running beams: the best continuations that did not end
        running_candidates = topk_log_probs + hits.astype(np.float32) * NEG
        keep = _topk(running_candidates, num_beams)[1]
        running_sequences = _gather(topk_sequences, keep)
        running_scores = _gather(running_candidates, keep)
        running_beam_indices = _gather(topk_beam_indices, keep)

        # 3. the finished hypotheses: merge the ended top-num_beams candidates, length-normalised
        just_finished = hits & top_num_beam_mask[None, :]
        finished_scores = topk_log_probs / ((cur_len + 1 - prompt_len) ** length_penalty)
        full = is_sent_finished.all(-1, keepdims=True) & (early_stopping is True)
        finished_scores = finished_scores + full.astype(np.float32) * NEG
        finished_scores = finished_scores + (~improvable).astype(np.float32) * NEG
        finished_scores = finished_scores + (~just_finished).astype(np.float32) * NEG
        merged_scores = np.concatenate([beam_scores, finished_scores], axis=1)
        best = _topk(merged_scores, num_beams)[1]
        sequences = _gather(np.concatenate([sequences, topk_sequences], axis=1), best)
        beam_scores = _gather(merged_scores, best)
        beam_indices = _gather(np.concatenate([beam_indices, topk_beam_indices], axis=1), best)
        is_sent_finished = _gather(np.concatenate([is_sent_finished, just_finished], axis=1), best)

        step.reorder(running_beam_indices[:, :, cur_len - prompt_len].reshape(-1))
        cur_len += 1

        # can a running beam still beat the worst kept hypothesis?
        if early_stopping == "never" and length_penalty > 0.0:
            best_length = max_length - prompt_len
        else:
            best_length = cur_len - prompt_len
        best_running = running_scores[:, :1] / (best_length ** length_penalty)
        worst_finished = np.where(is_sent_finished, beam_scores.min(1, keepdims=True), NEG)
        improvable = improvable & (best_running > worst_finished).any(-1, keepdims=True)
        open_beams = not (is_sent_finished.all() and early_stopping is True)
        if not (improvable.any() and open_beams and not hits.all()):
            break

    n = gc.num_return_sequences
    sequences = sequences[:, :n].reshape(B * n, -1)
    beam_indices = beam_indices[:, :n].reshape(B * n, -1)
    generated = int((beam_indices != -1).sum(1).max())
    return sequences[:, :prompt_len + generated]


__all__ = ["beam_search"]
