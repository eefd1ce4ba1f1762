"""The course manifest: which tutorials, in what order, with their goals, prerequisites and student time.

This is the one place that says so. `tinypeft course list` prints it, `tinypeft course export` follows its
order, and every tutorial's Markdown opens with the header block that `header()` renders from its entry
(tests/test_course.py fails when a file's header and its entry differ; `python -m tinypeft.course
--write-headers` rewrites the headers from the entries).

Files keep their numbers, so links stay stable; the order of COURSE is the teaching order. The main track
runs first; the backend track (the C matmul, the GPU) can be taken any time after its prerequisites.

Adding a tutorial is one entry: write tutorials/NN_name.md, add `Tutorial("NN", "NN_name.md", ...)` at its
place in COURSE, run `python -m tinypeft.course --write-headers`, and add its checks as
tinypeft/course/checks_NN.py with solutions in tutorials/solutions/NN_name.py. Only tutorials that exist are
listed (the test requires every tutorials/NN_*.md to have exactly one entry and every entry a file); the
comments in COURSE mark where the planned ones go.

Student time is an estimate for a student, not the machine's running time: reading the text at about 50
words a minute while running and changing the cells, plus about 45 minutes per exercise, rounded to the
half hour (adjusted up where an exercise is a derivation). It has not been measured on students.
"""
from dataclasses import dataclass

__all__ = ["Tutorial", "COURSE", "TRACKS", "by_number", "header", "HEADER_END"]

TRACKS = ("main", "backend")


@dataclass(frozen=True)
class Tutorial:
    number: str  # "01": the file's number, never reused
    file: str  # "01_autograd.md", in tutorials/
    title: str  # the Markdown's first line without "# NN · "
    goals: tuple  # what a student can do afterwards, one short phrase each
    hours: float  # honest student time (see the module docstring)
    after: tuple = ()  # tutorial numbers that must come first
    background: str = ""  # what a student must bring from outside the course
    track: str = "main"  # "main" or "backend"

    @property
    def stem(self):
        return self.file[: -len(".md")]


COURSE = (
    Tutorial("01", "01_autograd.md", "Tensors and reverse-mode autograd",
             ("build reverse-mode autograd for scalars and explain why it walks a topological order",
              "read how tinypeft's Function, ctx and the op registry generalise it to arrays",
              "sum a broadcast gradient back to its input's shape"),
             3.0, background="Python, NumPy arrays, the chain rule"),
    Tutorial("02", "02_gradcheck.md", "Proving gradients",
             ("check a backward against central differences in float64 with a random cotangent",
              "use tinypeft.testing.gradcheck on an op of your own",
              "write property tests over every broadcastable shape with hypothesis"),
             3.0, after=("01",)),
    Tutorial("04", "04_attention.md", "Attention and a transformer block, forward and backward",
             ("write a GPT-2 block in NumPy with a shape on every line",
              "derive the softmax and attention backwards and prove them",
              "explain what a causal mask does to the scores"),
             3.5, after=("01", "02")),
    Tutorial("05", "05_pretrained_minilm.md", "A real checkpoint: MiniLM, its tokenizer, and sentence similarity",
             ("read a safetensors file by hand", "explain how config.json decides the modules",
              "turn sentences into embeddings and compare them"),
             3.0, after=("04",)),
    Tutorial("06", "06_lora_from_scratch.md", "LoRA from scratch: the gradients, the scaling, the merge",
             ("derive LoRA's backward and match it against tinypeft's fused op and PEFT's layer",
              "explain B = 0 at the start, lora_alpha / r, and the merge W += s B A",
              "measure what the rank buys"),
             3.5, after=("02", "04")),
    Tutorial("15", "15_training_stack.md", "The training stack: loss, optimizer, schedule, Module, Trainer",
             ("derive cross-entropy's gradient softmax(z) - y and the label shift of causal LM training",
              "derive AdamW (moments, bias correction, decoupled weight decay) and the warmup schedules",
              "explain how nn.Module registers, names, saves and freezes parameters",
              "write a training loop whose losses equal the Trainer's, and learn BPE merges by hand"),
             4.0, after=("04", "06")),
    Tutorial("10", "10_generation_and_kv_cache.md", "Generation and the key/value cache",
             ("write the generation loop and the sampling rules (temperature, top-k, top-p)",
              "explain why a key/value cache gives the same tokens for less work, and measure it",
              "pad a batch on the left with positions from the attention mask"),
             3.0, after=("04", "05")),
    Tutorial("07", "07_quicktour.md", "The PEFT quicktour, with tinypeft",
             ("run PEFT's quicktour: LoraConfig, get_peft_model, Trainer, save_pretrained, AutoPeftModel",
              "count a model's trainable parameters by hand"),
             3.0, after=("06", "10")),
    Tutorial("16", "16_methods_from_scratch.md",
             "Every method from scratch: prompt tuning, P-tuning, prefix tuning, IA3, DoRA, OFT",
             ("build prompt tuning, P-tuning, prefix tuning, IA3 and DoRA by hand on a frozen model",
              "prove each gradient and match tinypeft's layers and PEFT's stored outputs",
              "derive DoRA's magnitude and direction gradients and what detaching the norm changes",
              "derive the backward of OFT's Cayley transform by hand and prove it by finite differences"),
             4.0, after=("06", "10", "07")),
    Tutorial("18", "18_evaluation.md", "Evaluation done properly: seeds, intervals, paired comparisons",
             ("put a Wilson interval on an accuracy and check its coverage by simulation",
              "separate training randomness (seeds) from test-sample noise",
              "compare two methods paired: per-seed differences and McNemar's exact test"),
             2.5, after=("15",), background="the binomial distribution"),
    Tutorial("08", "08_methods_compared.md", "Fourteen PEFT methods on one task: parameters, accuracy, time",
             ("train LoRA, IA3, prompt tuning, P-tuning and prefix tuning on one task",
              "compare methods by parameters, accuracy and time, DoRA, LoHa, LoKr, VeRA, OFT, HRA, FourierFT and "
              "LN tuning included"),
             2.0, after=("07",)),
    Tutorial("09", "09_sharing_adapters.md", "Sharing adapters: the file format, PEFT's adapters here, ours in PEFT",
             ("read and write an adapter's files byte by byte",
              "load PEFT's adapters in tinypeft and tinypeft's in PEFT",
              "merge, stack and combine adapters"),
             3.0, after=("05", "07")),
    Tutorial("17", "17_memory.md", "Memory: the byte budget of a training step",
             ("count a training step's parameters, gradients, Adam state and activations by hand",
              "measure them (the graph's saved arrays, tracemalloc) and find the count exact",
              "explain and measure what gradient checkpointing trades"),
             2.5, after=("06", "15")),
    Tutorial("12", "12_real_llm.md", "A real LLM on your CPU",
             ("open a GGUF file and unpack a quantized block by hand",
              "render a chat template and run a real 135M-parameter Llama",
              "teach it an answer format with LoRA"),
             2.5, after=("09", "10")),
    Tutorial("13", "13_four_bits.md", "Four bits",
             ("build the NF4 code and quantize a block by hand",
              "explain why QLoRA's adapters stay in float32",
              "measure what quantization and gradient checkpointing save"),
             2.0, after=("06", "07")),
    Tutorial("14", "14_speech_whisper.md", "Speech: from a waveform to Whisper, and LoRA through AutoPeftModel",
             ("compute a log-mel spectrogram by hand", "run Whisper's encoder and decoder prompt",
              "put LoRA on Whisper through AutoPeftModel"),
             2.0, after=("09", "10")),
    Tutorial("03", "03_matmul.md", "A blocked matmul in C, with cffi",
             ("count a matmul's work and memory traffic", "pack panels and write a micro-kernel",
              "compile C with cffi and measure it against BLAS"),
             3.0, after=("01",), background="reading C", track="backend"),
    Tutorial("11", "11_gpu_with_cupy.md", "The GPU path: one code for NumPy and CuPy",
             ("explain how one code path serves NumPy and CuPy through xp",
              "move tensors and models between devices, and say when the GPU pays"),
             2.0, after=("02",), track="backend"),
)  # fmt: skip

HEADER_END = "<!-- end of the course header: tinypeft/course/manifest.py writes the lines above -->"


def by_number(number):
    """The entry for tutorial `number` (an int or "07"); a clear error for one not in the course."""
    key = f"{int(number):02d}" if str(number).isdigit() else str(number)
    for t in COURSE:
        if t.number == key:
            return t
    raise ValueError(f"no tutorial {number!r} in the course; `tinypeft course list` shows them: "
                   f"{', '.join(t.number for t in COURSE)}")


def _hours(h):
    return f"{h:g} hour" + ("" if h == 1 else "s")


def header(t):
    """The Markdown block every tutorial opens with: its title, goals, prerequisites and student time."""
    prereqs = [f"[{p} · {by_number(p).title}]({by_number(p).file})" for p in t.after]
    if t.background:
        prereqs.append(t.background)
    lines = [
        f"# {t.number} · {t.title}",
        "",
        f"- **Goals:** {'; '.join(t.goals)}.",
        f"- **Prerequisites:** {'; '.join(prereqs) if prereqs else 'none'}.",
        f"- **Student time:** about {_hours(t.hours)} (reading, running the cells, the exercises).",
        HEADER_END,
    ]
    return "\n".join(lines) + "\n"


def split_header(text):
    """(header, body) of a tutorial's Markdown: the header runs through HEADER_END's line, or is the title
    line alone in a file that has no header yet."""
    if HEADER_END in text:
        end = text.index(HEADER_END) + len(HEADER_END) + 1
        return text[:end], text[end:]
    first, _, rest = text.partition("\n")
    return first + "\n", rest


def write_headers(folder):
    """Rewrite every listed tutorial's header from its entry (the body is left as it is)."""
    import os

    for t in COURSE:
        path = os.path.join(folder, t.file)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        _, body = split_header(text)
        new = header(t) + body
        if new != text:
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(new)
            os.replace(tmp, path)
            print(f"wrote {t.file}'s header")

