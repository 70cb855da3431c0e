"""The framework-free similarity of issue reports (mahtqa.monitoring.similarity)."""

from __future__ import annotations

import pytest

from mahtqa.monitoring.similarity import (
    IssueText,
    SimilarityIndex,
    exception_tokens,
    frame_module,
    frame_tokens,
    rank_of,
    stem,
    words,
)


def _frames(*items):
    return [{"filename": f, "lineno": n, "function": fn} for f, n, fn in items]


OOM_FRAMES = _frames(
    ("/srv/maht/mahtqa/engine/train.py", 188, "train_stage"),
    ("/opt/venv/lib/python3.11/site-packages/torch/nn/modules/module.py", 1527, "_call_impl"),
    ("/srv/maht/mahtqa/engine/model.py", 214, "forward"),
)
OOM = IssueText(
    key="oom", title="CUDA out of memory in coarse stage training",
    exception_type="torch.OutOfMemoryError",
    message="CUDA out of memory. Tried to allocate 2.50 GiB.",
    traces=[{"type": "torch.OutOfMemoryError", "message": "", "frames": OOM_FRAMES}],
)  # fmt: skip
BROKER = IssueText(
    key="broker", title="Broker down: cannot connect to Redis",
    exception_type="kombu.exceptions.OperationalError",
    message="Error 111 connecting to redis:6379. Connection refused.",
    traces=[{"type": "kombu.exceptions.OperationalError", "frames": _frames(
        ("/opt/venv/lib/python3.11/site-packages/kombu/connection.py", 433,
         "_reraise_as_library_errors"),
        ("/opt/venv/lib/python3.11/site-packages/redis/connection.py", 363, "connect"),
    )}],
)  # fmt: skip
DICOM = IssueText(
    key="dicom", title="No pixel data handler for JPEG 2000 studies",
    exception_type="RuntimeError",
    message="Unable to decode the pixel data: no pixel data handler is available",
    description="Site B sends JPEG 2000 compressed radiographs.",
)  # fmt: skip


def test_words_drop_numbers_ids_and_directories():
    text = (
        "Error 111 connecting to redis:6379 writing /srv/maht/var/media/2024/05/ceph_042.dcm "
        "for 123e4567-e89b-12d3-a456-426614174000 at 0x7f3a2b (job 9f86d081884c7d65)"
    )
    tokens = words(text)
    assert not any(ch.isdigit() for t in tokens for ch in t)
    assert "connect" in tokens
    assert "redis" in tokens
    assert "writ" in tokens
    assert "ceph" in tokens
    assert "dicom" in tokens
    assert not {"srv", "maht", "media", "var"} & set(tokens)
    assert not {"to", "for", "at"} & set(tokens)  # stop words
    # The same message with other numbers, ids and paths is the same bag of words.
    other = text.replace("111", "113").replace("6379", "6380").replace("/srv/maht", "/home/x")
    assert words(other) == tokens


def test_words_split_identifiers_and_expand_abbreviations():
    assert words("OutOfMemoryError") == ["out_of_memory_error", "memory", "error"]
    assert words("pixel_spacing") == ["pixel_spacing", "pixel", "spac"]
    assert words("GPU OOM") == ["gpu", "memory"]
    assert words("NaN loss") == ["nan", "loss"]
    assert words("conv2d IOError") == ["conv_d", "conv", "io_error", "io", "error"]


@pytest.mark.parametrize(
    ("word", "stemmed"),
    [("decoding", "decod"), ("decoder", "decod"), ("decode", "decod"), ("decoded", "decod"),
     ("losses", "loss"), ("loss", "loss"), ("status", "status"), ("images", "imag"),
     ("image", "imag"), ("batches", "batch"), ("entries", "entry"), ("gpu", "gpu")],
)  # fmt: skip
def test_stem(word, stemmed):
    assert stem(word) == stemmed


def test_exception_tokens():
    assert exception_tokens("torch.cuda.OutOfMemoryError") == [
        "exc:torch.cuda.outofmemoryerror", "exc:outofmemoryerror", "out_of_memory_error",
        "memory",
    ]  # fmt: skip
    assert exception_tokens("ValueError") == ["exc:valueerror", "value_error", "valu"]
    assert exception_tokens("") == []


def test_frame_module_keeps_the_last_two_parts():
    assert frame_module("/usr/lib/python3.11/site-packages/torch/nn/modules/module.py") == (
        "modules/module"
    )
    assert frame_module("C:\\work\\maht-qa\\mahtqa\\engine\\train.py") == "engine/train"
    assert frame_module("train.py") == "train"
    assert frame_module("") == ""


def test_frame_tokens_weigh_the_innermost_frames_and_ignore_line_numbers():
    frames = _frames(*[(f"/srv/app/pkg/mod{i}.py", i, f"fn{i}") for i in range(8)])
    weights = frame_tokens(frames)
    assert weights["mf:pkg/mod7:fn7"] == 1.0  # innermost
    assert weights["mf:pkg/mod5:fn5"] == 1.0  # the innermost three weigh alike
    assert weights["mf:pkg/mod4:fn4"] == pytest.approx(0.8)
    assert weights["mf:pkg/mod0:fn0"] == pytest.approx(0.8**5)
    assert weights["m:pkg/mod7"] == 0.5
    assert weights["f:fn7"] == 0.5
    moved = [
        {**f, "lineno": f["lineno"] + 40, "filename": "/other" + f["filename"]} for f in frames
    ]
    assert frame_tokens(moved) == weights
    assert frame_tokens(frames, scale=0.5)["mf:pkg/mod7:fn7"] == 0.5


def test_bags_fall_back_to_the_innermost_trace():
    text = IssueText(
        title="Crash", traces=[
            {"type": "KeyError", "message": "cause", "frames": []},
            {"type": "RuntimeError", "message": "CUDA failure", "frames": OOM_FRAMES},
        ],
    )  # fmt: skip
    bags = text.bags()
    assert bags["exception"]["exc:runtimeerror"] == 1.0
    assert bags["exception"]["exc:keyerror"] == pytest.approx(0.6)  # a chained cause
    assert set(bags["message"]) == {"cuda", "failur"}
    assert "mf:engine/model:forward" in bags["frames"]
    assert IssueText().bags() == {}


def test_index_ranks_the_same_root_cause_first_and_says_why():
    index = SimilarityIndex([OOM, BROKER, DICOM])
    report = IssueText(
        title="GPU OOM while training with a bigger batch",
        exception_type="torch.cuda.OutOfMemoryError",
        message="CUDA out of memory. Tried to allocate 1.88 GiB.",
        traces=[{"type": "torch.cuda.OutOfMemoryError", "frames": _frames(
            ("/home/eng/maht-qa/mahtqa/engine/train.py", 197, "train_stage"),
            ("/home/eng/maht-qa/mahtqa/engine/model.py", 220, "forward"),
        )}],
    )  # fmt: skip
    matches = index.query(report, limit=3)
    assert [m.key for m in matches] == ["oom"]  # the others share no token worth it
    best = matches[0]
    assert 0.3 < best.score < 1.0
    assert set(best.fields) >= {"exception", "message", "frames", "text"}
    assert "engine/model:forward" in best.terms or "engine/train:train_stage" in best.terms
    assert rank_of(matches, "oom") == 1
    assert rank_of(matches, "broker") is None


def test_identical_report_scores_one_and_a_missing_field_does_not_hurt():
    index = SimilarityIndex([OOM, BROKER, DICOM])
    assert index.query(OOM, limit=1)[0].score == pytest.approx(1.0, abs=1e-3)
    title_only = IssueText(key="t", title="Broker down: cannot connect to Redis")
    only = SimilarityIndex([title_only, DICOM])
    # The query has no exception, message or frames: only title and text count.
    assert only.query(IssueText(title=title_only.title))[0].score == pytest.approx(1.0, abs=1e-3)


def test_text_bag_meets_words_across_fields():
    index = SimilarityIndex([OOM, BROKER, DICOM])
    # Typed into the web form: no trace, the words of the DICOM issue's message and title.
    typed = IssueText(title="Radiographs fail to decode", description="JPEG 2000 from site B")
    matches = index.query(typed)
    assert matches[0].key == "dicom"
    assert "text" in matches[0].fields


def test_query_limit_exclude_and_min_score():
    docs = [IssueText(key=i, title=f"CUDA out of memory variant {w}")
            for i, w in enumerate(["alpha", "beta", "gamma", "delta"])]  # fmt: skip
    index = SimilarityIndex(docs)
    report = IssueText(title="CUDA out of memory")
    assert len(index.query(report, limit=2)) == 2
    assert len(index.query(report, limit=10)) == 4
    assert 0 not in [m.key for m in index.query(report, limit=10, exclude=[0])]
    assert index.query(report, min_score=0.99) == []
    assert index.query(IssueText(title="completely unrelated words")) == []
    assert SimilarityIndex([]).query(report) == []
    assert index.query(IssueText()) == []
    assert len(index) == 4


def test_rare_tokens_outweigh_common_ones():
    common = [IssueText(key=f"c{i}", title=f"training failed error {w}")
              for i, w in enumerate(["one", "two", "three", "four", "five"])]  # fmt: skip
    rare = IssueText(key="rare", title="spacing magnification")
    index = SimilarityIndex([*common, rare])
    matches = index.query(IssueText(title="training failed: spacing magnification error"))
    assert matches[0].key == "rare"
