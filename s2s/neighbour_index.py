"""The neighbour index: every training piece's hidden state, searchable by similarity.

For "what did it learn this from?" (Seq2Seq-Vis, Strobelt et al. 2018): the model is run over its
training pairs, teacher-forced, and two sets of vectors are stored, one per side:

- ``source``: for every source piece, the encoder's state there [De];
- ``output``: for every target piece, the decoder's state that predicted it (what the output
  layer reads) [Dd].

Each set is a FAISS index (``PQ{m}`` product quantisation, inner product of unit vectors = cosine):
``m`` bytes a vector, searched exhaustively in milliseconds, and no stored ids: vector i
of a side is piece ``i - starts[s]`` of sentence ``s`` (``starts`` [N + 1], cumulative piece counts).
Beside each vector the build keeps the piece of the other side that the model's attention aligns
it with (``aligned`` [P], uint8; NO_ALIGNMENT without attention): for a source piece, the target
piece whose step attends most to it; for a target piece, the source piece its step attends most.
Search returns candidates by the quantised similarity, with their alignment; the caller re-ranks
them by the exact states, which it recomputes from the stored text (``Translator.neighbours``).

A model folder's ``index/`` holds ``source.faiss``, ``output.faiss``, ``positions.safetensors``
(per side the starts, ``{side}``, and the alignments, ``{side}_aligned``), ``pairs.tsv.gz`` (the
indexed pairs' text, so the app works where the training data is not) and ``manifest.json`` (the
weights' SHA-256, each file's SHA-256, sizes, build time, recall). Loading checks both hashes
before FAISS reads a byte: a retrained model's index is refused as stale, a damaged file as
damaged, each with the command that rebuilds it.

Building streams the data in chunks into ``index.partial/`` (states as float16 on disk, memory
bounded by one chunk) and records its progress after each chunk, so a build cut off (Ctrl-C)
continues where it stopped when the same command runs again.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from tqdm import tqdm

from .checkpoint import WEIGHTS_FILE, load_model, write_json
from .data import pad, stream_pairs
from .heads import last_layer_average
from .model import EncoderDecoder, evaluating
from .tokenizer import BOS_ID, EOS_ID, Tokenizer

if TYPE_CHECKING:
    import faiss


def _faiss() -> Any:
    """FAISS, imported only by what reads or builds an index: training and plain translation
    never need it, and it brings a second OpenMP runtime into the process beside torch's."""
    import faiss

    return faiss


INDEX_FOLDER = "index"
PARTIAL_FOLDER = "index.partial"
MANIFEST_FILE = "manifest.json"
PAIRS_FILE = "pairs.tsv.gz"
POSITIONS_FILE = "positions.safetensors"
SIDES = ("source", "output")
FORMAT = 2  # 2: the alignment of every piece stored beside the starts
NO_ALIGNMENT = 255  # an ``aligned`` entry of a model without attention (pieces are at most MAX_PIECES)
CHUNK_PAIRS = 1024  # pairs run through the model between two progress records
TRAINING_VECTORS = 65_536  # vectors the quantiser is trained on, at most
RECALL_QUERIES = 200
RECALL_K = 10
CANDIDATES_PER_NEIGHBOUR = 5  # quantised candidates re-ranked exactly, per neighbour asked
MAX_PIECES = 64  # longer training sentences are left out, as training leaves them out


class NeighbourIndexError(ValueError):
    """A model's neighbour index is missing, stale or damaged; the message says how to build it."""


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_command(model_folder: Path, data: str = "TRAIN") -> str:
    return f"python -m s2s index --model {model_folder} --data {data}"


def unit(vectors: torch.Tensor) -> torch.Tensor:
    """Rows of ``vectors`` [..., D] scaled to length 1 (cosine similarity = inner product)."""
    return torch.nn.functional.normalize(vectors.float(), dim=-1)


def pair_ids(tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]]) -> tuple[list[list[int]], list[list[int]]]:
    """Source ids (with </s>, as the model reads them) and target ids (without </s>) of pairs."""
    sources = tokenizer.encode_batch([source for source, _ in pairs])
    targets = tokenizer.encode_batch([target for _, target in pairs])
    return [ids + [EOS_ID] for ids in sources], targets


def encoded(model: EncoderDecoder, sources: list[list[int]]) -> tuple[Any, Any]:
    """The model's encoding of source ids (each with </s>), one batch: its memory (``memory.states``,
    the encoder states [B, S, De]) and the decoder's initial state, each with ``select(rows)``."""
    lengths = torch.tensor([len(ids) for ids in sources])
    with evaluating(model), torch.inference_mode():
        return model.encode(pad(sources), lengths)


def read_targets(model: EncoderDecoder, memory: Any, state: Any, targets: list[list[int]]
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The teacher-forced decoder over target ids (without </s>), one row of ``memory`` each: the
    state that predicts each target piece [B, T, Dd] (T = the longest target + 1, the last
    predicting </s>), cross-attention [B, T, S] (multi-head: the last layer's average) or None."""
    target_in = pad([[BOS_ID] + ids for ids in targets])
    with evaluating(model), torch.inference_mode():
        decoder, alphas = model.read(target_in, state, memory)
    if alphas is not None and alphas.dim() == 5:
        alphas = last_layer_average(alphas)
    return decoder, alphas


def last_read(model: EncoderDecoder, memory: Any, state: Any, targets: list[list[int]]) -> torch.Tensor:
    """``read_targets`` at each row's end only: the decoder state that predicts the piece after
    each target (ids without </s>, one row of ``memory`` each) [N, Dd]. An RNN decoder runs packed."""
    target_in = pad([[BOS_ID] + ids for ids in targets])
    lengths = torch.tensor([len(ids) + 1 for ids in targets])
    with evaluating(model), torch.inference_mode():
        decoder, _ = model.last_states(target_in, lengths, state, memory)
    return decoder


def teacher_forced(model: EncoderDecoder, sources: list[list[int]], targets: list[list[int]]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The states of pairs (source ids with </s>, target ids without): encoder states [B, S, De]
    and ``read_targets``'s decoder states [B, T, Dd] and cross-attention [B, T, S] or None."""
    memory, state = encoded(model, sources)
    decoder, alphas = read_targets(model, memory, state, targets)
    return memory.states, decoder, alphas


def states_by_row(model: EncoderDecoder, sources: list[list[int]], targets: list[list[int]], group: int = 8
                  ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """``teacher_forced`` of each pair without padding's cost: rows of similar length are run
    together, ``group`` at a time (additive attention costs B x T x S x H, so one long sentence in
    a batch makes every row long). Per pair: encoder states [S, De] (</s> included), decoder states
    [T + 1, Dd], cross-attention [T + 1, S] or None."""
    order = sorted(range(len(sources)), key=lambda row: (len(sources[row]), len(targets[row])))
    found: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = {}
    for first in range(0, len(order), group):
        rows = order[first:first + group]
        encoder, decoder, alphas = teacher_forced(model, [sources[r] for r in rows], [targets[r] for r in rows])
        for batch_row, row in enumerate(rows):
            width, length = len(sources[row]), len(targets[row]) + 1
            found[row] = (encoder[batch_row, :width], decoder[batch_row, :length],
                          None if alphas is None else alphas[batch_row, :length, :width])
    return [found[row] for row in range(len(sources))]


@dataclasses.dataclass
class Candidate:
    """A training piece found near a query: sentence number, piece position, quantised similarity
    and the piece of the other side its attention aligns it with (None without attention)."""

    sentence: int
    position: int
    similarity: float
    aligned: int | None


class NeighbourIndex:
    """A loaded index (see the module docstring); ``search`` is safe across threads."""

    def __init__(self, folder: Path, manifest: dict[str, Any], indexes: dict[str, faiss.Index],
                 starts: dict[str, np.ndarray], aligned: dict[str, np.ndarray], pairs: list[tuple[str, str]]) -> None:
        self.folder, self.manifest, self.indexes, self.pairs = folder, manifest, indexes, pairs
        self.starts, self.aligned = starts, aligned

    @classmethod
    def load(cls, model_folder: Path, weights_sha256: str | None = None) -> "NeighbourIndex":
        """The index of ``model_folder``; NeighbourIndexError (how to build it) when it is missing,
        built for other weights than ``weights_sha256`` (the digest of the weights in memory;
        None: of the folder's weights file now), or damaged."""
        model_folder = Path(model_folder)
        folder = model_folder / INDEX_FOLDER
        rebuild = f"build it with: {build_command(model_folder)}"
        if not (folder / MANIFEST_FILE).is_file():
            raise NeighbourIndexError(f"{model_folder.name} has no neighbour index; {rebuild}")
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
            files, weights = dict(manifest["files"]), str(manifest["weights_sha256"])
            if manifest.get("format") != FORMAT:
                raise ValueError(f"format {manifest.get('format')!r}; this version reads format {FORMAT}")
            if set(files) != {f"{side}.faiss" for side in SIDES} | {PAIRS_FILE, POSITIONS_FILE}:
                raise ValueError("unknown files")
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
            raise NeighbourIndexError(f"the neighbour index of {model_folder.name} is damaged "
                                      f"({MANIFEST_FILE}: {error}); re{rebuild}") from None
        if weights != (weights_sha256 or file_digest(model_folder / WEIGHTS_FILE)):
            raise NeighbourIndexError(f"the neighbour index of {model_folder.name} is stale: it was built for "
                                      f"other weights than {WEIGHTS_FILE}; re{rebuild}")
        for name, digest in files.items():
            path = folder / name
            if not path.is_file() or file_digest(path) != digest:
                raise NeighbourIndexError(f"the neighbour index of {model_folder.name} is damaged ({name} is "
                                          f"missing or does not match {MANIFEST_FILE}); re{rebuild}")
        try:
            positions = load_file(str(folder / POSITIONS_FILE))
            starts = {side: positions[side].astype(np.int64) for side in SIDES if side in positions}
            aligned = {side: positions[f"{side}_aligned"] for side in SIDES if f"{side}_aligned" in positions}
            indexes = {side: _faiss().read_index(str(folder / f"{side}.faiss")) for side in SIDES}
            with gzip.open(folder / PAIRS_FILE, "rt", encoding="utf-8", newline="\n") as lines:
                pairs = [tuple(line.rstrip("\n").split("\t", 1)) for line in lines]
        except (SafetensorError, OSError, RuntimeError, ValueError, EOFError) as error:
            raise NeighbourIndexError(f"the neighbour index of {model_folder.name} cannot be read ({error}); "
                                      f"re{rebuild}") from None
        for side in SIDES:
            if side not in starts or side not in aligned or len(starts[side]) != len(pairs) + 1 or \
                    not int(starts[side][-1]) == len(aligned[side]) == indexes[side].ntotal:
                raise NeighbourIndexError(f"the neighbour index of {model_folder.name} is inconsistent "
                                          f"({side}); re{rebuild}")
        return cls(folder, manifest, indexes, starts, aligned, pairs)  # type: ignore[arg-type]

    @property
    def dimensions(self) -> dict[str, int]:
        return {side: self.indexes[side].d for side in SIDES}

    def search(self, side: str, query: torch.Tensor, count: int) -> list[Candidate]:
        """The ``count`` indexed pieces of ``side`` nearest the unit vector ``query`` [D], by the
        quantised cosine similarity, nearest first."""
        scores, found = self.indexes[side].search(query.reshape(1, -1).numpy().astype(np.float32), count)
        starts, aligned = self.starts[side], self.aligned[side]
        sentences = np.searchsorted(starts, found[0], side="right") - 1
        return [Candidate(int(sentence), int(number - starts[sentence]), float(score),
                          None if aligned[number] == NO_ALIGNMENT else int(aligned[number]))
                for score, number, sentence in zip(scores[0], found[0], sentences) if number >= 0]

    def summary(self) -> dict[str, Any]:
        """What the panel says about the index: sentences, pieces per side, recall, size."""
        keys = ("sentences", "pieces", "recall_at_10", "bytes", "data", "built_seconds")
        return {key: self.manifest.get(key) for key in keys}


# ---------------------------------------------------------------------------------------- building


@dataclasses.dataclass
class BuildSettings:
    """What a build is of; a partial build with other settings is started again."""

    model_sha256: str
    data: list[str]
    max_sentences: int | None
    seed: int
    bytes_per_vector: int


def _sample(paths: Sequence[Path], max_sentences: int | None, seed: int) -> tuple[int, np.ndarray | None]:
    """The number of pairs and, with ``max_sentences``, which of them to keep (bool [N])."""
    total = sum(1 for _ in stream_pairs(paths, on_skip=lambda message: None))
    if total == 0:
        raise ValueError(f"no data in {', '.join(map(str, paths))}")
    if max_sentences is None or max_sentences >= total:
        return total, None
    keep = np.zeros(total, dtype=bool)
    keep[np.random.default_rng(seed).choice(total, size=max_sentences, replace=False)] = True
    return total, keep


class _PartialBuild:
    """The files of a build in progress and its progress record (pairs read, sentences kept)."""

    def __init__(self, folder: Path, settings: BuildSettings, dimensions: dict[str, int]) -> None:
        self.folder, self.dimensions = folder, dimensions
        progress_path = folder / "progress.json"
        wanted = dataclasses.asdict(settings)
        progress = json.loads(progress_path.read_text()) if progress_path.is_file() else None
        if progress is None or progress.get("settings") != wanted:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            progress = {"settings": wanted, "read": 0, "kept": 0, "pieces": {side: 0 for side in SIDES},
                        "seconds": 0.0}
        self.progress = progress
        # Cut every file back to what the progress record says was finished.
        sizes = {"pairs.tsv": None, "lengths.i32": progress["kept"] * 8}
        sizes |= {f"{side}.f16": progress["pieces"][side] * dimensions[side] * 2 for side in SIDES}
        sizes |= {f"{side}.aligned.u8": progress["pieces"][side] for side in SIDES}
        self.streams = {}
        for name, size in sizes.items():
            path = folder / name
            path.touch()
            if name == "pairs.tsv":
                with open(path, encoding="utf-8", newline="\n") as stream:  # "\n" alone ends a pair
                    lines = stream.readlines()[: progress["kept"]]
                with open(path, "w", encoding="utf-8", newline="\n") as stream:
                    stream.write("".join(lines))
            else:
                with open(path, "r+b") as stream:
                    stream.truncate(size)
            self.streams[name] = open(path, "a" if name == "pairs.tsv" else "ab",
                                      **({"encoding": "utf-8", "newline": "\n"} if name == "pairs.tsv" else {}))

    def append(self, pairs: list[tuple[str, str]], lengths: np.ndarray, states: dict[str, np.ndarray],
               aligned: dict[str, np.ndarray], read: int, seconds: float) -> None:
        """Add one chunk: its pairs, their piece counts [n, 2], states per side [P, D] and
        alignments per side [P]; then record the progress (after the data is on disk)."""
        self.streams["pairs.tsv"].write("".join(f"{source}\t{target}\n" for source, target in pairs))
        self.streams["lengths.i32"].write(lengths.astype(np.int32).tobytes())
        for side in SIDES:
            self.streams[f"{side}.f16"].write(states[side].astype(np.float16).tobytes())
            self.streams[f"{side}.aligned.u8"].write(aligned[side].astype(np.uint8).tobytes())
        for stream in self.streams.values():
            stream.flush()
        self.progress["read"], self.progress["kept"] = read, self.progress["kept"] + len(pairs)
        for side, column in zip(SIDES, lengths.T):
            self.progress["pieces"][side] += int(column.sum())
        self.progress["seconds"] += seconds
        write_json(self.folder / "progress.json", self.progress)

    def close(self) -> None:
        for stream in self.streams.values():
            stream.close()

    def aligned(self, side: str) -> np.ndarray:
        """The alignments of ``side`` built so far [P] (uint8)."""
        return np.fromfile(self.folder / f"{side}.aligned.u8", dtype=np.uint8)[: self.progress["pieces"][side]]

    def vectors(self, side: str) -> np.ndarray:
        """The states of ``side`` built so far [P, D] (float16, memory-mapped)."""
        count = self.progress["pieces"][side]
        if count == 0:
            return np.zeros((0, self.dimensions[side]), dtype=np.float16)
        return np.memmap(self.folder / f"{side}.f16", dtype=np.float16, mode="r",
                         shape=(count, self.dimensions[side]))


def _chunks(paths: Sequence[Path], keep: np.ndarray | None, skip: int) -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """Chunks of the pairs to index, after the first ``skip`` pairs: (pairs read so far, chunk)."""
    chunk: list[tuple[str, str]] = []
    read = 0
    for read, pair in enumerate(stream_pairs(paths, on_skip=lambda message: None), start=1):
        if read <= skip or (keep is not None and not keep[read - 1]):
            continue
        chunk.append(pair)
        if len(chunk) == CHUNK_PAIRS:
            yield read, chunk
            chunk = []
    if chunk or read > skip:
        yield read, chunk


def alignments(alphas: torch.Tensor | None, source_pieces: int, target_pieces: int) -> dict[str, torch.Tensor]:
    """Per side, the other side's piece each real piece of one pair aligns with, from its
    cross-attention [T + 1, S + 1] (the rows and column of </s> left out): source [S] (the target
    piece that attends most to it), output [T] (the source piece it attends most); NO_ALIGNMENT
    everywhere when ``alphas`` is None."""
    if alphas is None:
        return {"source": torch.full((source_pieces,), NO_ALIGNMENT),
                "output": torch.full((target_pieces,), NO_ALIGNMENT)}
    real = alphas[:target_pieces, :source_pieces]
    return {"source": real.argmax(0), "output": real.argmax(1)}


def _chunk_states(model: EncoderDecoder, tokenizer: Tokenizer, pairs: list[tuple[str, str]]
                  ) -> tuple[list[tuple[str, str]], np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The pairs of a chunk the model can read (at most MAX_PIECES a side), their piece counts
    [n, 2] (source without </s>, target without </s>), unit states per side [P, D] and
    alignments per side [P] (``alignments``)."""
    sources, targets = pair_ids(tokenizer, pairs)
    kept = [row for row, (source, target) in enumerate(zip(sources, targets))
            if 1 < len(source) <= MAX_PIECES + 1 and 0 < len(target) <= MAX_PIECES]
    pairs = [pairs[row] for row in kept]
    sources, targets = [sources[row] for row in kept], [targets[row] for row in kept]
    lengths = np.array([[len(source) - 1, len(target)] for source, target in zip(sources, targets)],
                       dtype=np.int64).reshape(-1, 2)
    rows = states_by_row(model, sources, targets, group=128)
    states = {side: np.zeros((0, 1), dtype=np.float32) for side in SIDES}
    aligned = {side: np.zeros(0, dtype=np.uint8) for side in SIDES}
    if rows:
        states["source"] = unit(torch.cat([encoder[:-1] for encoder, _, _ in rows])).numpy()  # </s> not indexed
        states["output"] = unit(torch.cat([decoder[:-1] for _, decoder, _ in rows])).numpy()  # nor the one predicting it
        per_pair = [alignments(alphas, source_pieces, target_pieces)
                    for (_, _, alphas), (source_pieces, target_pieces) in zip(rows, lengths.tolist())]
        aligned = {side: torch.cat([pair[side] for pair in per_pair]).numpy().astype(np.uint8) for side in SIDES}
    return pairs, lengths, states, aligned


def quantiser(count: int, dimension: int, bytes_per_vector: int) -> str:
    """The FAISS factory string for ``count`` vectors: PQ with ``bytes_per_vector`` sub-quantisers
    (fewer when they do not divide ``dimension``) of 8 bits, or fewer bits when there are too few
    vectors to train 256 centroids (FAISS asks for 39 points per centroid)."""
    m = bytes_per_vector
    while dimension % m:
        m //= 2
    bits = int(min(8, max(1, np.floor(np.log2(max(count, 2) / 39)))))
    return f"PQ{m}" if bits == 8 else f"PQ{m}x{bits}"


def _quantise(vectors: np.ndarray, bytes_per_vector: int, seed: int) -> faiss.Index:
    """A PQ index of unit vectors [P, D] (float16), trained on a sample of them. (OPQ's rotation
    took 2-5x the training time and 30x the search time here; PQ with twice the bytes recalled
    more, see the README.)"""
    count, dimension = vectors.shape
    faiss = _faiss()
    index = faiss.index_factory(dimension, quantiser(count, dimension, bytes_per_vector), faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(seed).choice(count, size=min(count, TRAINING_VECTORS), replace=False)
    index.train(np.asarray(vectors[np.sort(sample)], dtype=np.float32))
    for first in range(0, count, 65_536):
        index.add(np.asarray(vectors[first:first + 65_536], dtype=np.float32))
    return index


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The k rows of ``vectors`` [P, D] with the largest inner product with each query [Q, D] -> [Q, k]."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for first in range(0, len(vectors), 131_072):
        scores = queries @ np.asarray(vectors[first:first + 131_072], dtype=np.float32).T
        scores = np.concatenate([best_scores, scores], axis=1)
        rows = np.concatenate([best_rows, np.arange(first, first + scores.shape[1] - best_rows.shape[1])[None]
                               .repeat(len(queries), 0)], axis=1)
        top = np.argsort(-scores, axis=1)[:, :k]
        best_scores, best_rows = np.take_along_axis(scores, top, 1), np.take_along_axis(rows, top, 1)
    return best_rows


def recall(index: faiss.Index, vectors: np.ndarray, seed: int) -> dict[str, float]:
    """Recall@10 of the quantised search against exact search over the float16 states, on
    RECALL_QUERIES indexed vectors as queries: alone, and with the top 5 x 10 re-ranked exactly
    (what ``Translator.neighbours`` does)."""
    rows = np.random.default_rng(seed + 1).choice(len(vectors), size=min(RECALL_QUERIES, len(vectors)), replace=False)
    queries = np.asarray(vectors[np.sort(rows)], dtype=np.float32)
    truth = exact_top(vectors, queries, RECALL_K)
    _, found = index.search(queries, RECALL_K * CANDIDATES_PER_NEIGHBOUR)
    reranked = []
    for query, candidates in zip(queries, found):
        candidates = candidates[candidates >= 0]
        exact = np.asarray(vectors[np.sort(candidates)], dtype=np.float32) @ query
        reranked.append(np.sort(candidates)[np.argsort(-exact)[:RECALL_K]])

    def share(found_rows: Sequence[np.ndarray]) -> float:
        return float(np.mean([len(set(f[:RECALL_K].tolist()) & set(t.tolist())) / RECALL_K
                              for f, t in zip(found_rows, truth)]))

    return {"quantised": round(share(found), 4), "reranked": round(share(reranked), 4)}


def build_index(model_folder: Path, data: Sequence[Path], max_sentences: int | None = None, seed: int = 1,
                bytes_per_vector: int = 32, progress: bool = True,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Index the training pairs ``data`` (one TSV or two line-aligned files) for the model in
    ``model_folder`` (all of them, or a seeded sample of ``max_sentences``); writes
    ``model_folder/index/`` and returns its manifest. Continues a build cut off with the same
    arguments."""
    model_folder = Path(model_folder)
    model, tokenizer = load_model(model_folder)
    settings = BuildSettings(file_digest(model_folder / WEIGHTS_FILE), [str(p) for p in data], max_sentences, seed,
                             bytes_per_vector)
    with torch.inference_mode():
        probe_encoder, probe_decoder, _ = teacher_forced(model, [[EOS_ID]], [[EOS_ID]])
    dimensions = {"source": probe_encoder.size(-1), "output": probe_decoder.size(-1)}
    total, keep = _sample(data, max_sentences, seed)
    partial = _PartialBuild(model_folder / PARTIAL_FOLDER, settings, dimensions)
    wanted = total if keep is None else int(keep.sum())
    if partial.progress["read"]:
        log(f"continuing a build: {partial.progress['read']:,} of {total:,} pairs read")
    bar = tqdm(total=total, initial=partial.progress["read"], unit="pairs", disable=not progress)
    try:
        for read, chunk in _chunks(data, keep, partial.progress["read"]):
            started = time.perf_counter()
            pairs, lengths, states, aligned = _chunk_states(model, tokenizer, chunk)
            partial.append(pairs, lengths, states, aligned, read, time.perf_counter() - started)
            bar.update(read - bar.n)
    finally:
        bar.close()
        partial.close()
    started = time.perf_counter()
    final = model_folder / PARTIAL_FOLDER / "final"
    shutil.rmtree(final, ignore_errors=True)
    final.mkdir()
    recalls, positions = {}, {}
    lengths = np.fromfile(partial.folder / "lengths.i32", dtype=np.int32).reshape(-1, 2).astype(np.int64)
    for column, side in enumerate(SIDES):
        vectors = partial.vectors(side)
        log(f"quantising {len(vectors):,} {side} states ({dimensions[side]} dimensions) ...")
        index = _quantise(vectors, bytes_per_vector, seed)
        _faiss().write_index(index, str(final / f"{side}.faiss"))
        recalls[side] = recall(index, vectors, seed)
        positions[side] = np.concatenate([[0], np.cumsum(lengths[:, column])]).astype(np.int32)
        positions[f"{side}_aligned"] = partial.aligned(side)
    save_file(positions, str(final / POSITIONS_FILE))
    with open(partial.folder / "pairs.tsv", "rb") as text, open(final / PAIRS_FILE, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as out:  # same text, same bytes
        shutil.copyfileobj(text, out)
    files = {path.name: file_digest(path) for path in sorted(final.iterdir())}
    manifest = {
        "format": FORMAT, "weights_sha256": settings.model_sha256, "files": files,
        "data": [Path(p).name for p in data], "pairs_in_data": total, "sentences": partial.progress["kept"],
        "sampled": keep is not None, "seed": seed, "skipped_longer_than": MAX_PIECES,
        "pieces": partial.progress["pieces"], "dimensions": dimensions,
        "quantiser": {side: quantiser(partial.progress["pieces"][side], dimensions[side], bytes_per_vector)
                      for side in SIDES},
        "recall_at_10": recalls, "recall_queries": RECALL_QUERIES,
        "bytes": sum(path.stat().st_size for path in final.iterdir()),
        "built_seconds": round(partial.progress["seconds"] + time.perf_counter() - started, 1),
        "requested_sentences": wanted,
    }
    write_json(final / MANIFEST_FILE, manifest)
    target = model_folder / INDEX_FOLDER
    shutil.rmtree(target, ignore_errors=True)
    final.rename(target)
    shutil.rmtree(partial.folder, ignore_errors=True)
    return manifest


def folder_signature(model_folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of the weights and of every file in ``index/``: what a
    refusal depends on, read without hashing a byte."""
    paths = [model_folder / WEIGHTS_FILE]
    if (model_folder / INDEX_FOLDER).is_dir():
        paths += sorted((model_folder / INDEX_FOLDER).iterdir())
    entries = []
    for path in paths:
        try:
            status = path.stat()
        except OSError:
            continue
        entries.append((path.name, status.st_size, status.st_mtime_ns))
    return tuple(entries)


class LazyIndex:
    """A model folder's index for the weights in memory (``weights_sha256``), loaded on first use
    (once, across threads). A refusal (missing, stale, damaged) is remembered with the folder's
    ``folder_signature`` and repeated without hashing the files again until a file changes, so one
    built while the app runs is found. A model retrained in place is a new ``Translator`` with a
    new LazyIndex (``ModelCatalog``), so nothing stale outlives the weights it was checked for."""

    def __init__(self, model_folder: Path | None, weights_sha256: str | None = None) -> None:
        self.model_folder, self.weights_sha256, self.lock = model_folder, weights_sha256, threading.Lock()
        self.loaded: NeighbourIndex | None = None
        self.refusal: tuple[tuple[tuple[str, int, int], ...], str] | None = None  # (signature, message)

    def get(self) -> NeighbourIndex:
        if self.model_folder is None:
            raise NeighbourIndexError("this model was not loaded from a folder, so it has no neighbour index")
        with self.lock:
            if self.loaded is None:
                signature = folder_signature(self.model_folder)
                if self.refusal is not None and self.refusal[0] == signature:
                    raise NeighbourIndexError(self.refusal[1])  # a new error: a kept one would grow its traceback
                try:
                    self.loaded = NeighbourIndex.load(self.model_folder, self.weights_sha256)
                except NeighbourIndexError as error:
                    self.refusal = (signature, str(error))
                    raise
            return self.loaded
