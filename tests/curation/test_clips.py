"""Keyframe-aware clipping: snapped clips never hold a labelled boundary; stream-copied clips decode with the
expected length."""
import av
import numpy as np
import pytest

from svdc.curation import process_video
from svdc.curation.clips import Clip, ClipParams, export, make_clips, shots
from svdc.curation.cuts import Cut
from svdc.curation.io import probe


def hard(frame):
    return Cut(frame=frame, time=0, level=0, kind="hard", score=1, start=frame, end=frame)


def test_shots_between_hard_and_gradual_cuts():
    cuts = [hard(10), Cut(frame=25, time=0, level=1, kind="gradual", score=1, start=20, end=30)]
    assert shots(cuts, 50) == [(0, 9), (10, 19), (31, 49)]


def test_snapping_to_keyframes_at_both_ends():
    times = np.arange(100) / 10.0
    clips = make_clips([hard(33)], times, keyframes=[0.0, 2.0, 4.0, 6.0, 8.0], frame_duration=0.1,
                       params=ClipParams(min_seconds=1.0))
    # shot 0..32 ends before the keyframe at 20 (frames 20..32 dropped); shot 33..99 starts at the keyframe 40
    assert [(c.start_frame, c.end_frame) for c in clips] == [(0, 19), (40, 99)]
    assert clips[0].dropped_seconds == pytest.approx(1.3)
    assert clips[1].dropped_seconds == pytest.approx(0.7)
    assert clips[1].end_time == pytest.approx(10.0)
    # a shot with no keyframe inside cannot be cut without re-encoding: dropped; so are clips below min_seconds
    assert [(c.start_frame, c.end_frame) for c in make_clips([hard(33)], times, [0.0, 9.5], 0.1)] == []
    assert [(c.start_frame, c.end_frame) for c in make_clips([hard(33)], times, [0.0, 3.3], 0.1)] == [
        (0, 32), (33, 99)]
    with pytest.raises(ValueError, match="min_seconds"):
        make_clips([hard(33)], times, [0.0], 0.1, ClipParams(min_seconds=float("nan")))


def test_clips_hold_no_labelled_boundary(labelled_video):
    path, labels = labelled_video
    rows = process_video(path)
    assert rows["videos"][0]["status"] == "ok"
    clips = rows["clips"]
    assert len(clips) >= 3
    keyframes = probe(path).keyframes
    for c in clips:
        assert any(abs(c["start_time"] - k) < 1e-6 for k in keyframes), f"clip {c} does not start at a keyframe"
        for cut in labels["cuts"]:  # a hard cut at frame `cut`: frames cut-1 and cut never in one clip
            assert not (c["start_frame"] < cut <= c["end_frame"]), f"clip {c} holds the cut at {cut}"
        for _, s, e in labels["gradual"]:  # no frame of a transition in a clip
            assert c["end_frame"] < s or c["start_frame"] > e, f"clip {c} overlaps the transition [{s}, {e}]"
        assert c["duration"] == pytest.approx((c["end_frame"] - c["start_frame"] + 1) / labels["fps"])


def test_stream_copy_export_decodes_with_the_expected_length(labelled_video, tmp_path):
    path, labels = labelled_video
    clips = [Clip.from_row(r) for r in process_video(path)["clips"]]
    for clip in clips:
        out = export(path, clip, str(tmp_path / f"clip{clip.index}.mp4"))
        with av.open(out) as c:
            n = sum(1 for _ in c.decode(video=0))
        assert n == clip.end_frame - clip.start_frame + 1
    assert not list(tmp_path.glob("*.partial*"))
    with pytest.raises(FileNotFoundError, match="source"):
        export(str(tmp_path / "missing.mp4"), clips[0], str(tmp_path / "x.mp4"))


def test_reencoded_export_is_frame_exact_from_any_start(labelled_video, tmp_path):
    path, _ = labelled_video
    clip = Clip(index=0, start_frame=5, end_frame=30, start_time=5 / 24, end_time=31 / 24, shot_start_frame=0,
                shot_end_frame=47, dropped_seconds=0.0)
    with pytest.raises(ValueError, match="not a keyframe"):
        export(path, clip, str(tmp_path / "copy.mp4"))
    assert not list(tmp_path.iterdir())
    out = export(path, clip, str(tmp_path / "re.mp4"), reencode=True)
    with av.open(out) as c:
        assert sum(1 for _ in c.decode(video=0)) == 26
