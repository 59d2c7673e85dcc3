"""The desktop bundle: packaging/build.sh builds it with PyInstaller, archives it and
packages it as a .deb; the archive's install.sh installs it; the installed `lungapp` runs
the CLI (ONNX and Keras runtimes), opens its window in a real X server, and uninstalls
without touching user data; the .deb carries the bundle, its menu entry, icon, copyright,
changelog and system dependencies. packaging/smoke.sh goes further (dpkg -i/-r, train,
offline checks) and is run by hand (docs/packaging.md).

One build (4-10 min, about 2 GB in a temporary folder) is shared by the module's tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

import lungapp

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "resources" / "examples").glob("*.wav"))

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bundle")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the release archive, unpack it elsewhere and install it into a prefix."""
    if shutil.which("pyinstaller", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("PyInstaller is not installed (packaging/setup.sh --test installs it)")
    base = tmp_path_factory.mktemp("bundle")
    out = base / "dist"
    proc = subprocess.run(["bash", str(ROOT / "packaging" / "build.sh"), "--out", str(out),
                           "--python", sys.executable], capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    archives = list(out.glob("lungapp-*-linux-*.tar.gz"))
    assert [a.name for a in archives] == [f"lungapp-{lungapp.__version__}-linux-{os.uname().machine}.tar.gz"]
    unpacked = base / "unpacked"
    with tarfile.open(archives[0]) as tar:
        tar.extractall(unpacked, filter="tar")
    prefix = base / "prefix"
    _install(unpacked, prefix)
    unpacked.rename(base / "moved")  # the installed copy must not depend on the archive
    return prefix


@pytest.fixture(scope="module")
def deb(installed):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    debs = list((installed.parent / "dist").glob("*.deb"))
    assert [d.name for d in debs] == [f"lungapp_{lungapp.__version__}-1_{_dpkg_arch()}.deb"]
    return debs[0]


def _dpkg_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()


def test_deb_control_declares_version_licence_and_system_dependencies(deb):
    fields = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True).stdout
    control = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line and not line.startswith(" "))
    assert control["Package"] == "lungapp" and control["Version"] == f"{lungapp.__version__}-1"
    assert control["Section"] == "science" and control["Priority"] == "optional"
    assert "@" in control["Maintainer"] and control["Description"]
    depends = [d.strip().split(" ")[0] for d in control["Depends"].split(",")]
    # PortAudio (sounddevice loads it at run time) and what Qt's xcb platform plugin links
    assert "libportaudio2" in depends and "libc6" in depends
    assert {"libxcb-cursor0", "libxkbcommon-x11-0", "libxcb-icccm4"} <= set(depends), depends
    assert int(control["Installed-Size"]) > 100 * 1024  # KiB: the whole bundle is counted


def test_deb_contents_menu_entry_icon_and_docs(deb, tmp_path):
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    assert os.readlink(tmp_path / "usr" / "bin" / "lungapp") == "/opt/lungapp/lungapp"
    desktop = (tmp_path / "usr" / "share" / "applications" / "lungapp.desktop").read_text()
    assert 'Exec="lungapp" %F' in desktop and "Icon=lungapp\n" in desktop
    assert "audio/x-wav" in desktop and "audio/flac" in desktop
    assert (tmp_path / "usr/share/icons/hicolor/scalable/apps/lungapp.svg").is_file()
    doc = tmp_path / "usr" / "share" / "doc" / "lungapp"
    assert "GPL-3.0-or-later" in (doc / "copyright").read_text()
    assert (doc / "changelog.Debian.gz").is_file()
    app = tmp_path / "opt" / "lungapp" / "lungapp"
    run = subprocess.run([str(app), "--version"], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == f"lungapp {lungapp.__version__}"


def test_deb_maintainer_scripts_never_touch_user_data(deb, tmp_path):
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path)], check=True)
    for script in ("postinst", "postrm"):
        text = (tmp_path / script).read_text()
        assert "rm " not in text and "HOME" not in text.replace("LUNGAPP_HOME", "")
    purge = subprocess.run(["/bin/sh", str(tmp_path / "postrm"), "purge"], capture_output=True, text=True,
                           env=dict(os.environ, PATH="/nonexistent"))  # no cache tools: still fine
    assert purge.returncode == 0 and "~/.local/share/lungapp" in purge.stdout and "kept" in purge.stdout


def _install(folder: Path, prefix: Path | None, *args):
    """Run folder/install.sh with PREFIX=prefix (None: unset, the script's own choice)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFIX"}
    if prefix is not None:
        env["PREFIX"] = str(prefix)
    inst = subprocess.run(["sh", str(folder / "install.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stderr
    return inst


def _run(prefix: Path, *args, env=None, timeout=300):
    return subprocess.run([str(prefix / "bin" / "lungapp"), *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def test_installed_layout_and_menu_entry(installed):
    app = installed / "lib" / "lungapp"
    assert (installed / "bin" / "lungapp").resolve() == (app / "lungapp").resolve()
    desktop = (installed / "share" / "applications" / "lungapp.desktop").read_text()
    assert f'Exec="{app / "lungapp"}" %F' in desktop
    assert f"Icon={app / 'lungapp.svg'}" in desktop and (app / "lungapp.svg").is_file()
    assert "@" not in desktop  # every placeholder filled


def test_installed_cli_version_info_and_predictions_match_the_pip_install(installed):
    assert _run(installed, "--version").stdout.strip() == f"lungapp {lungapp.__version__}"
    info = _run(installed, "info")
    assert info.returncode == 0, info.stderr
    assert "not installed" not in info.stdout.splitlines()[1], info.stdout  # library versions
    assert "lungapp-sprsound" in info.stdout
    frozen = _run(installed, "predict", "--format", "json", *map(str, EXAMPLES))
    assert frozen.returncode == 0, frozen.stderr
    source = subprocess.run([sys.executable, "-m", "lungapp", "predict", "--format", "json",
                             *map(str, EXAMPLES)], capture_output=True, text=True, timeout=300)
    assert source.returncode == 0, source.stderr
    got, want = json.loads(frozen.stdout), json.loads(source.stdout)
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want):
        assert g["abnormal_probability"] == pytest.approx(w["abnormal_probability"], abs=1e-5)


def test_installed_keras_runtime_loads_the_bundled_model(installed):
    """TensorFlow and Keras are in the bundle (training, and model folders without ONNX
    exports need them)."""
    one = [str(EXAMPLES[0])]
    keras = _run(installed, "predict", "--format", "json", *one, env={"LUNGAPP_RUNTIME": "keras"})
    onnx = _run(installed, "predict", "--format", "json", *one, env={"LUNGAPP_RUNTIME": "onnx"})
    assert keras.returncode == 0 and onnx.returncode == 0, keras.stderr + onnx.stderr
    k, n = json.loads(keras.stdout)[0], json.loads(onnx.stdout)[0]
    assert k["abnormal_probability"] == pytest.approx(n["abnormal_probability"], abs=1e-4)


def test_installed_gui_opens_its_window(installed):
    if not os.environ.get("DISPLAY") or shutil.which("xwininfo") is None:
        pytest.skip("needs an X server (pytest-xvfb) and xwininfo (x11-utils)")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    proc = subprocess.Popen([str(installed / "bin" / "lungapp"), str(EXAMPLES[0])], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found, deadline = False, time.monotonic() + 60
        while not found and time.monotonic() < deadline and proc.poll() is None:
            tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
            found = "lungapp — lung sound review" in tree
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert found, "the bundle's main window did not appear within 60 s"
        time.sleep(3)  # the model loads and the example is analysed in workers
        assert proc.poll() is None, proc.communicate()[1][-3000:]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err[-3000:]


def test_reinstall_then_uninstall_keeps_user_data(installed, lungapp_home):
    marker = lungapp_home / "recordings" / "keep.txt"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("a user's recording")
    unpacked, prefix = installed.parent / "moved", installed.parent / "prefix2"
    _install(unpacked, prefix)
    _install(unpacked, prefix)  # a reinstall replaces the app folder whole
    lib = prefix / "lib" / "lungapp"
    assert sorted(p.name for p in prefix.joinpath("lib").iterdir()) == ["lungapp"]
    assert _run(prefix, "--version").returncode == 0
    # the installed copy of install.sh uninstalls its own PREFIX, without the archive
    out = _install(lib, None, "--uninstall")
    assert "kept" in out.stdout and str(prefix) in out.stdout
    assert not lib.exists() and not (prefix / "bin" / "lungapp").is_symlink()
    assert not (prefix / "share" / "applications" / "lungapp.desktop").exists()
    assert marker.read_text() == "a user's recording"
    assert _run(installed, "--version").returncode == 0  # the other install is untouched


def test_bundle_leaves_out_what_no_path_loads(installed):
    """The cuts of docs/packaging.md "Smaller": libraries stripped where they still load,
    identical libraries linked, never-loaded modules left out (the CLI tests above and
    packaging/smoke.sh's train run show the paths still work without them)."""
    internal = installed / "lib" / "lungapp" / "_internal"
    for gone in ("tensorflow/compiler/mlir/stablehlo/stablehlo_extension.so",
                 "tensorflow/python/profiler/internal/_pywrap_profiler_plugin.so",
                 "PySide6/Qt/lib/libQt6Network.so.6"):
        assert not (internal / gone).exists(), gone
    for pattern in ("PIL/_avif*", "sklearn/svm/*.so", "scipy/io/**/*.so", "*.dist-info/RECORD"):
        assert not list(internal.glob(pattern)), pattern
    assert (internal / "tensorflow" / "libtensorflow_cc.so.2").is_file()  # training's runtime stays
    scipy_copies = [p for p in (internal / "scipy.libs").iterdir() if (internal / "numpy.libs" / p.name).exists()]
    assert scipy_copies and all(p.is_symlink() and p.resolve().is_file() for p in scipy_copies)
    libpython = next(internal.glob("libpython3*.so*"))
    header = libpython.read_bytes()
    assert b".debug_info" not in header and b".symtab" not in header  # section names of a -g build
