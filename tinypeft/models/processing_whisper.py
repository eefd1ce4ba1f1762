"""WhisperProcessor: the feature extractor (audio -> log-mel) and the tokenizer (text <-> ids) in one object."""
from .feature_extraction_whisper import WhisperFeatureExtractor


class WhisperProcessor:
    def __init__(self, feature_extractor, tokenizer):
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, revision=None, **kwargs):
        from ..tokenization import AutoTokenizer

        return cls(WhisperFeatureExtractor.from_pretrained(pretrained_model_name_or_path, revision=revision),
                   AutoTokenizer.from_pretrained(pretrained_model_name_or_path, revision=revision))

    def save_pretrained(self, save_directory):
        self.feature_extractor.save_pretrained(save_directory)
        self.tokenizer.save_pretrained(save_directory)

    def __call__(self, audio=None, sampling_rate=None, text=None, **kwargs):
        """audio -> {"input_features"}; text -> {"input_ids", ...}; both -> features with "labels" = the ids."""
        if audio is None and text is None:
            raise ValueError("Pass audio= (a waveform), text=, or both.")
        if audio is None:
            return self.tokenizer(text, **kwargs)
        out = self.feature_extractor(audio, sampling_rate=sampling_rate, **kwargs)
        if text is not None:
            out["labels"] = self.tokenizer(text)["input_ids"]
        return out

    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)
