"""AttributeDict: a dict whose keys also read as attributes (transformers.utils.generic is where its ModelOutput
lives). ModelOutput (a model's outputs.logits) and BatchEncoding (a tokenizer's batch.input_ids) are both one."""


class AttributeDict(dict):
    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None
