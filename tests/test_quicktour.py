"""Hugging Face PEFT's quicktour, with `tinypeft` written where it says `peft` / `transformers`.

The code below is the quicktour's, line for line, except the model names, which point at the tiny
fixture models (mT5 in place of mt0-large, OPT in place of opt-350m), a tiny dataset, and the paths.
"""
import numpy as np

FIX = "tests/fixtures"


def test_peft_quicktour_end_to_end(tmp_path, capsys):
    # --- Train ---------------------------------------------------------------------------------------------
    from tinypeft import LoraConfig, TaskType

    peft_config = LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM, inference_mode=False, r=8, lora_alpha=32, lora_dropout=0.1)

    from tinypeft import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(f"{FIX}/models/mt5")

    from tinypeft import get_peft_model

    model = get_peft_model(model, peft_config)
    model.print_trainable_parameters()
    # q and v of every attention: encoder self (2 layers), decoder self and cross (2 layers each): each
    # adds A [8, 32] and B [inner, 8]; inner = num_heads * d_kv
    cfg = model.get_base_model().config
    inner = cfg.num_heads * cfg.d_kv
    expected = (2 + 4) * 2 * 8 * (cfg.d_model + inner)
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"trainable params: {expected:,d} || all params: ")

    from tinypeft import AutoTokenizer, DataCollatorForSeq2Seq, Dataset, Trainer, TrainingArguments

    tokenizer = AutoTokenizer.from_pretrained(f"{FIX}/tokenizers/bpe")
    pairs = [("translate: the cat", "le chat"), ("translate: the dog", "le chien"), ("translate: a house", "une maison"),
             ("translate: the sun", "le soleil"), ("translate: a tree", "un arbre"), ("translate: the sea", "la mer")]
    raw = Dataset.from_list([{"text": s, "target": t} for s, t in pairs * 4])
    tokenized_datasets = raw.map(lambda ex: tokenizer(ex["text"], text_target=ex["target"], truncation=True,
                                                      max_length=32)).train_test_split(test_size=0.25, seed=0)
    tokenized_datasets["train"] = tokenized_datasets["train"].remove_columns(["text", "target"])
    tokenized_datasets["test"] = tokenized_datasets["test"].remove_columns(["text", "target"])
    data_collator = DataCollatorForSeq2Seq(tokenizer, model=model)

    def compute_metrics(eval_pred):
        return {"n": float(len(eval_pred.label_ids))}

    training_args = TrainingArguments(
        output_dir=str(tmp_path / "your-name/bigscience/mt0-large-lora"),
        learning_rate=1e-3,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=32,
        num_train_epochs=2,
        weight_decay=0.01,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        disable_tqdm=True,
    )

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=tokenized_datasets["train"],
        eval_dataset=tokenized_datasets["test"],
        processing_class=tokenizer,
        data_collator=data_collator,
        compute_metrics=compute_metrics,
    )

    result = trainer.train()
    assert result.global_step == 2 and np.isfinite(result.training_loss)

    model.save_pretrained(tmp_path / "output_dir")
    assert (tmp_path / "output_dir" / "adapter_model.safetensors").is_file()

    # --- Inference (the quicktour loads ybelkada/opt-350m-lora; we save an OPT adapter to load) ------------
    opt = get_peft_model(__import__("tinypeft").AutoModelForCausalLM.from_pretrained(f"{FIX}/models/opt"),
                         LoraConfig(task_type=TaskType.CAUSAL_LM))
    opt.save_pretrained(tmp_path / "opt-350m-lora")

    from tinypeft import AutoPeftModelForCausalLM
    from tinypeft import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "opt-350m-lora")
    tokenizer = AutoTokenizer.from_pretrained(f"{FIX}/models/opt")

    model.eval()
    inputs = tokenizer("Preheat the oven to 350 degrees and place the cookie dough", return_tensors="pt")

    capsys.readouterr()  # the training's log lines
    outputs = model.generate(input_ids=inputs["input_ids"], max_new_tokens=20)  # 50 in the quicktour: the tiny OPT has 64 positions
    print(tokenizer.batch_decode(outputs.detach().cpu().numpy(), skip_special_tokens=True)[0])
    text = capsys.readouterr().out
    assert text.startswith("Preheat the oven to 350 degrees and place the cookie dough")
    assert outputs.shape[1] <= inputs["input_ids"].shape[1] + 20
