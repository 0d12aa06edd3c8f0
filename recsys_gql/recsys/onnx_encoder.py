"""The sentence model on ONNX Runtime: an offline export of the packaged model, optionally
quantised to int8, and an encoder that runs it without torch.

sentence-transformers' own ONNX backend needs ``optimum-onnx``, whose releases pin
``transformers<4.58`` (a downgrade of the transformers 5 this project uses), so the export is
done here with the libraries' public tools instead:

1. ``torch.onnx.export`` of the whole sentence-transformers pipeline (BERT, mean pooling,
   L2 normalisation) with eager attention, so the graph has the patterns ONNX Runtime fuses;
2. ``onnxruntime.transformers.optimizer.optimize_model`` fuses them (EmbedLayerNormalization,
   Attention, BiasGelu, SkipLayerNormalization);
3. for ``onnx-int8``, ``onnxruntime.quantization.quantize_dynamic``: int8 weights, per output
   channel, activations quantised on the fly.

The result is cached under ``<cache>/onnx/<model>-<weights digest>-<backend>/model.onnx`` and
built once per machine (seconds); the build writes a temporary folder and renames it, so
concurrent builders never see a half-written model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

EncoderBackend = Literal["torch", "onnx", "onnx-int8"]
"""How the sentence model runs: sentence-transformers on torch (fp32), or the exported graph on
ONNX Runtime in fp32 or with dynamic int8 quantisation."""

BACKENDS: tuple[EncoderBackend, ...] = ("torch", "onnx", "onnx-int8")
MODEL_FILE = "model.onnx"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnxruntime_quietly() -> Any:
    """``onnxruntime``, imported with its telemetry off unless the environment already says.

    Its Linux builds since 1.29 carry telemetry to Microsoft's event collector, on unless
    ``ORT_DISABLE_TELEMETRY`` (or ``CI``) is set, and on import keep a device id and an event
    store under ``~/.cache/Microsoft`` (in a container: the image, or the writable layer). A
    service should not report on the machines it is deployed to without the operator asking,
    so the variable defaults to 1 here; ``ORT_DISABLE_TELEMETRY=0`` turns the events back on.
    It takes effect only before the library's first import in the process.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return onnxruntime


def export_dir_for(cache_root: Path, model_label: str, backend: EncoderBackend) -> Path:
    """The folder that holds the exported model of ``backend`` for one set of weights."""
    return cache_root / "onnx" / f"{model_label}-{backend}"


def export_onnx(model_path: Path, target: Path, *, quantize: bool) -> Path:
    """Export the sentence-transformers model at ``model_path`` into ``target/model.onnx``.

    Returns the model file. Does nothing when it already exists. Needs torch and
    sentence-transformers (only here: encoding with the result does not).
    """
    model_file = target / MODEL_FILE
    if model_file.is_file():
        return model_file
    onnxruntime_quietly()  # before torch.onnx or the optimiser can import it
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        raw, fused = work / "raw.onnx", work / "fused.onnx"
        _export_torch(model_path, raw)
        _fuse(raw, fused, model_path)
        if quantize:
            _quantize(fused, work / MODEL_FILE)
        else:
            fused.rename(work / MODEL_FILE)
        for leftover in (raw, fused):
            leftover.unlink(missing_ok=True)
        try:
            work.rename(target)
        except OSError:
            if not model_file.is_file():  # not a concurrent builder's finished folder
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return model_file


def _export_torch(model_path: Path, out: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(model_path), device="cpu", model_kwargs={"attn_implementation": "eager"}
    )

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            features = dict(zip(_INPUTS, inputs, strict=True))
            return self.model(features)["sentence_embedding"]

    sample = model.preprocess(["an example", "a somewhat longer example sentence"])
    args = tuple(sample[name] for name in _INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of the dynamo one, whose graphs
        # ONNX Runtime's BERT fusions do not recognise; its tracer warnings are about branches
        # that are constant for every input this model gets.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pipeline().eval(),
            args,
            str(out),
            input_names=list(_INPUTS),
            output_names=["sentence_embedding"],
            dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _fuse(raw: Path, out: Path, model_path: Path) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((model_path / "config.json").read_text(encoding="utf-8"))
    optimized = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
        opt_level=1,
        use_gpu=False,
    )
    optimized.save_model_to_file(str(out))


def _quantize(fused: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "consider pre-processing": the graph is already fused
    try:
        quantize_dynamic(
            str(fused),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=False,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        quiet.setLevel(level)


class OnnxSentenceModel:
    """An exported sentence model on ONNX Runtime with the model's own fast tokenizer.

    Texts are tokenised once, sorted by token count and batched, so each batch is padded only
    to its own longest text.
    """

    def __init__(
        self, model_file: Path, tokenizer_file: Path, *, max_seq_length: int, threads: int = 0
    ) -> None:
        from tokenizers import Tokenizer

        ort = onnxruntime_quietly()

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        # Busy-waiting worker threads only burn a core that the other processes on a shared
        # machine could use.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_seq_length)
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], *, batch_size: int) -> npt.NDArray[np.float32]:
        """Unit vectors of ``texts`` in order, as a ``(len(texts), dim)`` float32 array."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, order.size, batch_size):
            rows = order[start : start + batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((rows.size, width), dtype=np.int64)
            types = np.zeros_like(ids)
            mask = np.zeros_like(ids)
            for k, row in enumerate(rows):
                encoding = encodings[row]
                n = len(encoding.ids)
                ids[k, :n] = encoding.ids
                types[k, :n] = encoding.type_ids
                mask[k, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            used = {name: array for name, array in feed.items() if name in self._inputs}
            (vectors,) = self.session.run(None, used)
            out[rows] = vectors
        return out


def default_threads() -> int:
    """ONNX Runtime's intra-op threads: ``$RECSYS_GQL_ONNX_THREADS`` or 0 (one per core)."""
    try:
        return max(0, int(os.environ.get("RECSYS_GQL_ONNX_THREADS", "0")))
    except ValueError:
        return 0
