"""The command line imports the modules of other commands (curation, batch, text) only when they run, so an argument
error of img2vid/demo stays fast (the rule of tests/unit/test_cli_preflight.py); help still lists every command."""
import subprocess
import sys

OTHER_MODULES = ("svdc.curation", "svdc.runner", "svdc.text_cli")


def imported_after(argv):
    code = ("import sys\nfrom svdc.cli import main\nrc = main(%r)\n"
            "print(rc, sorted(m for m in sys.modules if m.startswith(%r)))" % (argv, OTHER_MODULES))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return r.stdout.strip().splitlines()[-1], r.stderr


def test_an_img2vid_argument_error_imports_no_other_command(tmp_path):
    last, err = imported_after(["img2vid", str(tmp_path / "missing.png"), "--model", "tiny",
                                "-o", str(tmp_path / "out.avi")])
    assert last == "2 []", (last, err)
    assert "'.avi'" in err


def test_a_command_from_another_module_imports_only_its_own():
    last, err = imported_after(["batch", "/nonexistent.csv", "--out", "/nonexistent-dir"])
    assert "svdc.runner" in last and "svdc.curation" not in last and "svdc.text_cli" not in last, (last, err)


def test_help_lists_every_command():
    r = subprocess.run([sys.executable, "-m", "svdc", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for command in ("info", "img2vid", "multiview", "demo", "txt2img", "txt2vid", "curate", "batch"):
        assert command in r.stdout, command
