"""What a run shows while it trains and leaves behind: a tqdm bar (epoch, loss, learning rate, throughput),
each log entry printed as transformers prints it ({'loss': '0.6931', 'grad_norm': ..., 'epoch': ...}), the
JSONL log (report_to="jsonl"), TensorBoard scalars (report_to="tensorboard", through tensorboardX), and a
loss-curve PNG when matplotlib is installed."""
import json
import os
import time
import warnings
from pathlib import Path

from tqdm.auto import tqdm

LOG_NAME = "trainer_log.jsonl"
LOSS_CURVE_NAME = "loss_curve.png"


class ProgressBar:
    """One bar over the optimizer steps; the postfix shows the latest loss and lr and the throughput since
    the bar started: tokens/s when the batches have an attention mask, else samples/s."""

    def __init__(self, total, initial, disable):
        self.bar = tqdm(total=total, initial=initial, disable=disable, desc="train", dynamic_ncols=True)
        self.start = time.perf_counter()
        self.samples = 0
        self.tokens = 0

    def set_epoch(self, epoch, num_epochs):
        self.bar.set_description(f"epoch {epoch + 1}/{num_epochs}", refresh=False)

    def count(self, batch):
        first = next(iter(batch.values()))
        self.samples += len(first)
        if "attention_mask" in batch:
            self.tokens += int(batch["attention_mask"].sum())

    def step(self, loss, lr):
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = f"{self.tokens / elapsed:.0f} tok/s" if self.tokens else f"{self.samples / elapsed:.1f} samples/s"
        self.bar.set_postfix_str(f"loss={loss:.4f}, lr={lr:.2e}, {rate}", refresh=False)
        self.bar.update(1)

    def write(self, message):
        self.bar.write(message)

    def close(self):
        self.bar.close()


def format_logs(entry):
    """A log entry as transformers' ProgressCallback/PrinterCallback print it: floats to 4 significant
    digits, the step left out (it is in log_history, not in the printed dict)."""
    return str({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in entry.items() if k != "step"})


class JsonlLog:
    """Appends each log_history entry as one JSON line to output_dir/trainer_log.jsonl."""

    def __init__(self, output_dir):
        self.path = Path(output_dir) / LOG_NAME

    def truncate_after(self, step):
        """Drop entries logged after `step`: a run starting (0) or resuming from a checkpoint (its step)
        logs those steps again, and the file should read like one unbroken run. A torn last line (the
        process was killed mid-append) is dropped with a warning; a bad line elsewhere is an error."""
        if not self.path.exists():
            return
        lines = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        entries = []
        for number, line in enumerate(lines, 1):
            try:
                entries.append((json.loads(line), line))
            except json.JSONDecodeError:
                if number < len(lines):
                    raise ValueError(f"{self.path}, line {number}: not valid JSON; delete the line or the file "
                                     "to continue") from None
                warnings.warn(f"{self.path}: dropped a torn last line (an interrupted write): {line[:60]!r}")
        kept = [line for entry, line in entries if isinstance(entry, dict) and entry.get("step", 0) <= step]
        tmp = self.path.with_name("." + self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, self.path)

    def write(self, entry):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


class TensorBoardLog:
    """Each log entry's numbers as TensorBoard scalars at the entry's step, named as transformers'
    TensorBoardCallback names them: eval_accuracy -> "eval/accuracy", loss -> "train/loss". The writer is
    tensorboardX's SummaryWriter (no torch needed); the folder is logging_dir, else $TENSORBOARD_LOGGING_DIR,
    else output_dir/runs/<month day_time>_<host> as transformers and PyTorch name it."""

    def __init__(self, args):
        import socket
        from datetime import datetime

        from tensorboardX import SummaryWriter  # TrainingArguments checked that it is installed

        self.log_dir = args.logging_dir or os.environ.get("TENSORBOARD_LOGGING_DIR") or os.path.join(
            args.output_dir, "runs", datetime.now().strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname())
        self.writer = SummaryWriter(logdir=str(self.log_dir))

    def write(self, entry):
        for key, value in entry.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            tag = "eval/" + key[5:] if key.startswith("eval_") else (
                "test/" + key[5:] if key.startswith("test_") else "train/" + key)
            self.writer.add_scalar(tag, value, entry["step"])
        self.writer.flush()  # readable while the run goes on, and nothing lost on a kill

    def close(self):
        self.writer.close()


def plot_loss_curve(log_history, output_dir):
    """output_dir/loss_curve.png of the logged training (and eval) losses; nothing without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no window: training often runs without a display
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    if not train and not evals:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for points, label in ((train, "train"), (evals, "eval")):
        if points:
            ax.plot(*zip(*points), marker="." if len(points) < 50 else None, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    path = Path(output_dir) / LOSS_CURVE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)  # a run that saved no checkpoint has not made it yet
    fig.tight_layout()
    tmp = path.with_name("." + path.name + ".tmp")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    os.replace(tmp, path)  # atomic: a viewer never sees half a PNG
    return path
