"""Environment verification: each crafted failure gives a red (or amber) check with its fix;
the stored report, the workers page, the CLI and the beat routing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from importlib import metadata
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from apps.monitoring.models import WorkerEnvironment
from apps.monitoring.services.environment import (
    broker_probe_for,
    database_probe,
    worker_environment_record,
)
from mahtqa.monitoring.environment import (
    AMBER,
    GREEN,
    RED,
    Check,
    EnvironmentInputs,
    EnvironmentReport,
    ModelRef,
    Thresholds,
    TorchFacts,
    environment_verify,
    sha256_file,
)
from mahtqa.monitoring.environment_checks import check_cuda, check_device, check_gpu, check_ram
from mahtqa.monitoring.environment_facts import nvidia_smi_cuda_parse, nvidia_smi_parse
from mahtqa.monitoring.environment_files import (
    check_disk,
    check_model,
    check_packages,
    check_probe,
    check_storage,
)
from mahtqa.monitoring.requirements import requirements_parse, version_matches
from tests.factories import ModelVersionFactory

REPO = Path(__file__).resolve().parents[2]
CPU_TORCH = TorchFacts(version="2.13.0+cpu", cuda=None)
CUDA_TORCH = TorchFacts(version="2.13.0+cu128", cuda="12.8", cuda_available=True, device_count=1)
T = Thresholds()

SMI_CSV = "0, NVIDIA H200, 143771, 1203, 7, 570.86.15\n1, NVIDIA H200, [N/A], 0, [N/A], 570.86.15\n"
SMI_PLAIN = "| NVIDIA-SMI 570.86.15   Driver Version: 570.86.15   CUDA Version: 12.8     |\n"


# --- torch build, device, CUDA, GPU --------------------------------------------------------


def test_cuda_requested_on_a_cpu_only_torch_build_is_red_with_the_fix():
    check = check_device(requested="cuda", torch=CPU_TORCH, pin="2.13.0")
    assert (check.code, check.status) == ("device", RED)
    assert "CPU-only build" in check.message
    assert check.fix.startswith("set MAHTQA_DEVICE=cpu, or install a CUDA build of torch")
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu" in check.fix
    cuda = check_cuda(requested="cuda", torch=CPU_TORCH, driver_cuda=None, pin="2.13.0")
    assert cuda.status == RED
    assert "pip install torch==2.13.0 --index-url" in cuda.fix


def test_cpu_deployment_on_a_cpu_build_is_green_and_says_no_gpu():
    assert check_device(requested="cpu", torch=CPU_TORCH).status == GREEN
    assert check_cuda(requested="cpu", torch=CPU_TORCH, driver_cuda=None).status == GREEN
    gpu = check_gpu(requested="cpu", gpu={"smi": None, "gpus": []}, thresholds=T)
    assert (gpu.status, gpu.message, gpu.fix) == (GREEN, "no GPU (CPU deployment)", "")


def test_cuda_build_without_a_visible_device_and_a_wrong_index():
    hidden = TorchFacts(version="2.13.0+cu128", cuda="12.8", cuda_available=False)
    check = check_device(requested="cuda", torch=hidden)
    assert check.status == RED
    assert "nvidia-smi" in check.fix
    assert "CUDA_VISIBLE_DEVICES" in check.fix
    index = check_device(requested="cuda:3", torch=CUDA_TORCH)
    assert index.status == RED
    assert index.fix == "set MAHTQA_DEVICE=cuda:0"
    assert check_device(requested="cuda:0", torch=CUDA_TORCH).status == GREEN
    bogus = check_device(requested="tpu", torch=CPU_TORCH)
    assert bogus.status == RED
    assert bogus.fix.startswith("set MAHTQA_DEVICE=cpu")


def test_driver_older_than_the_torch_cuda_build_is_red():
    check = check_cuda(requested="cuda", torch=CUDA_TORCH, driver_cuda="12.2")
    assert check.status == RED
    assert "driver supports up to 12.2" in check.message
    assert check.fix.startswith("upgrade the NVIDIA driver")
    assert "https://download.pytorch.org/whl/cu122" in check.fix
    assert check_cuda(requested="cuda", torch=CUDA_TORCH, driver_cuda="12.8").status == GREEN


def test_nvidia_smi_output_parses_including_unavailable_fields():
    gpus = nvidia_smi_parse(SMI_CSV)
    assert [(g.index, g.name, g.memory_total_mb, g.utilization_pct) for g in gpus] == [
        (0, "NVIDIA H200", 143771.0, 7.0),
        (1, "NVIDIA H200", None, None),
    ]
    assert nvidia_smi_cuda_parse(SMI_PLAIN) == "12.8"
    assert nvidia_smi_cuda_parse("no driver here") is None


def test_gpu_requested_but_none_visible_and_gpu_memory_full():
    none = check_gpu(requested="cuda", gpu={"smi": None, "gpus": []}, thresholds=T)
    assert none.status == RED
    assert "nvidia-smi not found" in none.message
    assert none.fix.startswith("nvidia-smi")
    full = {"memory_used_mb": 143000.0, "memory_total_mb": 143771.0, "utilization_pct": 99.0}
    gpu = {"smi": "/usr/bin/nvidia-smi", "gpus": [{"name": "H200", "driver": "570", **full}]}
    check = check_gpu(requested="cuda", gpu=gpu, thresholds=T)
    assert check.status == AMBER
    assert "143000/143771 MiB" in check.message
    assert "nvidia-smi" in check.fix


# --- RAM, disk, packages --------------------------------------------------------------------


def test_low_ram_by_thresholds():
    low = check_ram(available_bytes=0.25 * 1024**3, total_bytes=8 * 1024**3, thresholds=T)
    assert low.status == RED
    assert "--concurrency" in low.fix
    mid = check_ram(available_bytes=1.0 * 1024**3, total_bytes=8 * 1024**3, thresholds=T)
    assert mid.status == AMBER
    assert (
        check_ram(available_bytes=6 * 1024**3, total_bytes=8 * 1024**3, thresholds=T).status
        == GREEN
    )


def test_low_disk_by_thresholds(tmp_path):
    red = check_disk(
        label="media", path=tmp_path, thresholds=Thresholds(disk_amber_gb=1e9, disk_red_gb=1e9)
    )
    assert (red.code, red.status) == ("disk_media", RED)
    assert red.fix.startswith(f"du -sh {tmp_path}/* | sort -h")
    amber = check_disk(
        label="media", path=tmp_path, thresholds=Thresholds(disk_amber_gb=1e9, disk_red_gb=0)
    )
    assert amber.status == AMBER
    assert amber.fix
    ok = check_disk(
        label="media", path=tmp_path, thresholds=Thresholds(disk_amber_gb=0, disk_red_gb=0)
    )
    assert ok.status == GREEN
    assert ok.fix == ""
    assert ok.value > 0


def _requirements(tmp_path: Path) -> Path:
    django = metadata.version("Django")
    (tmp_path / "common.txt").write_text(
        f"# pinned\nDjango=={django}\npsycopg[binary]=={metadata.version('psycopg')}\n"
        "numpy>=1.0  # presence only\nnot-a-real-package-xyz==1.0\n"
        'old-only-pkg==9.9 ; python_version < "3"\n'
    )
    (tmp_path / "base.txt").write_text(
        "-r common.txt\n--index-url https://example.org\nsix==0.0.1\n"
    )
    return tmp_path / "base.txt"


def test_requirements_parse_follows_includes_and_drops_extras_and_markers(tmp_path):
    pins = requirements_parse(_requirements(tmp_path))
    assert set(pins) == {"django", "psycopg", "numpy", "not-a-real-package-xyz", "six"}
    assert pins["numpy"] == ""
    assert pins["six"] == "0.0.1"
    assert version_matches(installed="2.13.0+cpu", pinned="2.13.0")
    assert version_matches(installed="5.2", pinned="5.2.0")
    assert not version_matches(installed="5.2.19", pinned="5.2.18")


def test_package_drift_and_a_missing_package_are_red_with_the_pip_commands(tmp_path):
    pins = requirements_parse(_requirements(tmp_path))
    check = check_packages(pins=pins, label="requirements/base.txt")
    assert (check.code, check.status, check.value) == ("packages", RED, 2)
    assert f"six {metadata.version('six')} (pinned 0.0.1)" in check.message
    assert "not-a-real-package-xyz missing (pinned 1.0)" in check.message
    assert check.fix.startswith("pip install -r requirements/base.txt")
    assert "pip install 'not-a-real-package-xyz==1.0' 'six==0.0.1'" in check.fix


def test_the_real_requirements_match_this_venv():
    pins = requirements_parse(REPO / "requirements" / "base.txt")
    check = check_packages(pins=pins, label="requirements/base.txt")
    assert check.status == GREEN, check.message


# --- model, storage, database, broker -------------------------------------------------------


def _model(tmp_path: Path, *, sha256: str | None = None) -> ModelRef:
    path = tmp_path / "maht-net.pt"
    path.write_bytes(b"weights v1")
    return ModelRef("maht-net", "1.0", path, sha256 or sha256_file(path))


def test_model_sha256_differs_is_red_with_the_fix(tmp_path):
    model = _model(tmp_path, sha256="ab" * 32)
    check = check_model(model=model)
    assert check.status == RED
    assert "differs from the registry's abababababab" in check.message
    assert f"restore {model.path} from the model store" in check.fix
    assert "python manage.py model_register_bundled" in check.fix
    assert check_model(model=_model(tmp_path)).status == GREEN


def test_missing_model_file_and_no_active_model_are_red(tmp_path):
    model = _model(tmp_path)
    model.path.unlink()
    missing = check_model(model=model)
    assert missing.status == RED
    assert "weights file missing" in missing.message
    assert "model_register_bundled" in missing.fix
    none = check_model(model=None)
    assert none.status == RED
    assert none.fix.startswith("python manage.py model_register_bundled")
    unread = check_model(model=None, lookup_error="OperationalError")
    assert unread.status == AMBER
    assert unread.fix == "see the database check"


def test_unwritable_storage_is_red_with_the_fix(tmp_path):
    blocker = tmp_path / "media"
    blocker.write_text("a file where the folder should be")
    check = check_storage(label="media", directory=blocker / "derived", thresholds=T)
    assert (check.code, check.status) == ("storage_media", RED)
    assert "ENOTDIR" in check.message
    assert check.fix.startswith(f"ls -ld {blocker / 'derived'}  # a file is in the way")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file modes")
def test_storage_without_write_permission_is_red(tmp_path):
    tmp_path.chmod(0o500)
    try:
        check = check_storage(label="phi", directory=tmp_path, thresholds=T)
    finally:
        tmp_path.chmod(0o700)
    assert check.status == RED
    assert check.fix.startswith("chown -R $(id -un)")


def test_writable_storage_reports_throughput_and_leaves_nothing(tmp_path):
    check = check_storage(label="media", directory=tmp_path / "new", thresholds=T)
    assert check.status in (GREEN, AMBER)
    assert check.value > 0
    assert "MB/s" in check.message
    assert list((tmp_path / "new").iterdir()) == []
    slow = check_storage(
        label="media", directory=tmp_path, thresholds=Thresholds(storage_amber_mb_s=1e9)
    )
    assert slow.status == AMBER
    assert "iostat" in slow.fix


def test_unreachable_broker_on_a_closed_port_is_red_with_the_fix(settings):
    fix = 'redis-cli -u "$CELERY_BROKER_URL" ping  # then: systemctl status redis-server'
    check = check_probe(code="broker", probe=broker_probe_for(url="redis://127.0.0.1:1/0"),
                        amber_ms=500, fix=fix, what="broker")  # fmt: skip
    assert (check.status, check.fix) == (RED, fix)
    assert check.message == "broker unreachable (OperationalError)"
    reachable = check_probe(code="broker", probe=broker_probe_for(), amber_ms=500, fix=fix,
                            what="broker")  # fmt: skip
    assert reachable.status == GREEN
    assert reachable.value >= 0


@pytest.mark.django_db
def test_database_probe_times_a_round_trip():
    check = check_probe(
        code="database", probe=database_probe, amber_ms=1000, fix="x", what="database"
    )
    assert check.status == GREEN
    assert "ms round trip" in check.message

    def down() -> None:
        raise ConnectionRefusedError("postgres://user:secret@db/x")

    failed = check_probe(
        code="database", probe=down, amber_ms=1000, fix="pg_isready", what="database"
    )
    assert failed.status == RED
    assert "secret" not in failed.message


def test_a_whole_run_with_crafted_inputs_lists_every_check(tmp_path):
    inputs = EnvironmentInputs(
        device="cuda",
        torch=CPU_TORCH,
        nvidia_smi=str(tmp_path / "no-nvidia-smi"),
        requirements=_requirements(tmp_path),
        model=_model(tmp_path, sha256="0" * 64),
        storage_dirs={"media": tmp_path / "media", "phi": tmp_path / "phi"},
        database_probe=lambda: None,
        broker_probe=broker_probe_for(url="redis://127.0.0.1:1/0"),
    )
    report = environment_verify(inputs)
    by_code = {c.code: c for c in report.checks}
    assert set(by_code) == {
        "python", "torch", "device", "cuda", "gpu", "ram", "disk_media", "packages", "model",
        "storage_media", "storage_phi", "database", "broker",
    }  # fmt: skip
    assert report.status == RED
    red = {c.code for c in report.checks if c.status == RED}
    assert red == {"device", "cuda", "gpu", "packages", "model", "broker"}
    assert all(c.fix for c in report.checks if c.status != GREEN)
    assert "also" in by_code["disk_media"].message  # one check per volume
    assert report.facts["torch_build"] == "cpu"
    assert report.facts["device"] == "cuda"
    json.dumps(report.as_dict())  # storable as JSON


# --- stored report, workers page ------------------------------------------------------------

CUDA_FIX = (
    "set MAHTQA_DEVICE=cpu, or install a CUDA build of torch: pip install torch==2.13.0 "
    "--index-url https://download.pytorch.org/whl/cu128"
)


def _report(*checks: Check) -> EnvironmentReport:
    facts = {
        "python": "3.11.7", "torch": "2.13.0+cpu", "torch_cuda": None, "device": "cuda",
        "gpus": [], "ram_total_gb": 8, "ram_available_gb": 6, "cpus": 2, "model": None,
    }  # fmt: skip
    return EnvironmentReport(facts=facts, checks=list(checks))


@pytest.mark.django_db
def test_the_report_is_stored_once_per_worker_and_queue():
    ok = _report(Check("python", GREEN, "Python 3.11.7", value="3.11.7"))
    worker_environment_record(hostname="w1@gpu", queue="inference", report=ok)
    bad = _report(Check("device", RED, "MAHTQA_DEVICE=cuda but CPU build", CUDA_FIX, "cuda"))
    row = worker_environment_record(hostname="w1@gpu", queue="inference", report=bad)
    worker_environment_record(hostname="w1@gpu", queue="default", report=ok)
    assert WorkerEnvironment.objects.count() == 2
    row.refresh_from_db()
    assert row.status == RED
    assert row.checks == [
        {"code": "device", "status": RED, "message": "MAHTQA_DEVICE=cuda but CPU build",
         "fix": CUDA_FIX, "value": "cuda"}
    ]  # fmt: skip


@pytest.mark.django_db
def test_workers_page_shows_every_check_with_its_fix_and_stale_reports(engineer_client):
    bad = _report(
        Check("python", GREEN, "Python 3.11.7"),
        Check("device", RED, "MAHTQA_DEVICE=cuda but torch 2.13.0+cpu is the CPU-only build",
              CUDA_FIX, "cuda"),
        Check("disk_media", AMBER, "3.0 GiB free", "du -sh /srv/media/* | sort -h", 3.0),
    )  # fmt: skip
    worker_environment_record(hostname="gpu-1", queue="inference", report=bad)
    old = timezone.now() - timedelta(hours=2)
    worker_environment_record(hostname="cpu-1", queue="checks", report=_report(), now=old)
    response = engineer_client.get("/monitoring/workers/")
    assert response.status_code == 200
    body = response.content.decode()
    assert f'<pre class="fix"><code>{CUDA_FIX}</code></pre>' in body
    assert '<pre class="fix"><code>du -sh /srv/media/* | sort -h</code></pre>' in body
    assert "MAHTQA_DEVICE=cuda but torch 2.13.0+cpu is the CPU-only build" in body
    rows = response.context["rows"]
    assert [(r["env"].hostname, r["status"], r["stale"]) for r in rows] == [
        ("gpu-1", RED, False),
        ("cpu-1", AMBER, True),  # green but older than 3 intervals
    ]
    assert "Stale: no report for" in body
    assert [c["code"] for c in rows[0]["failing"]] == ["device", "disk_media"]


@pytest.mark.django_db
def test_workers_page_is_for_engineers_and_admins(radiologist_client, admin_client_):
    assert radiologist_client.get("/monitoring/workers/").status_code == 403
    response = admin_client_.get("/monitoring/workers/")
    assert response.status_code == 200
    assert b"No worker has reported yet" in response.content


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def healthy(tmp_path, settings):
    """An active model whose file is there, storage under tmp, pins this venv satisfies."""
    weights = tmp_path / "maht-net.pt"
    weights.write_bytes(b"weights")
    ModelVersionFactory(weights_file=weights, is_active=True)
    settings.MEDIA_ROOT, settings.PHI_ROOT = tmp_path / "media", tmp_path / "phi"
    settings.MAHTQA_DEVICE = "cpu"
    requirements = tmp_path / "req.txt"
    requirements.write_text(f"Django=={metadata.version('Django')}\n")
    return {"weights": weights, "requirements": requirements}


def _run(*args: str) -> tuple[str, int]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("verify_environment", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc.returncode
    return out.getvalue(), 0


@pytest.mark.django_db
def test_cli_on_a_healthy_machine_exits_0_and_prints_the_table(healthy):
    out, code = _run("--requirements", str(healthy["requirements"]))
    assert code == 0, out
    for name in (
        "python",
        "torch",
        "device",
        "packages",
        "model",
        "storage_media",
        "database",
        "broker",
    ):
        assert f"  {name}" in out
    assert "FAIL" not in out
    assert out.rstrip().splitlines()[-1] in (
        "overall: green",
        "overall: amber",
    )


@pytest.mark.django_db
def test_cli_json_exits_1_on_a_missing_model_file_with_code_message_and_fix(healthy):
    healthy["weights"].unlink()
    out, code = _run("--json", "--requirements", str(healthy["requirements"]))
    assert code == 1
    checks = {c["code"]: c for c in json.loads(out)["checks"]}
    assert all({"code", "status", "message", "fix"} <= set(c) for c in checks.values())
    assert checks["model"]["status"] == RED
    assert "model_register_bundled" in checks["model"]["fix"]
    assert checks["database"]["status"] == GREEN


@pytest.mark.django_db
def test_cli_exits_1_on_an_unreachable_broker_and_a_bad_device(healthy, settings):
    settings.MAHTQA_DEVICE = "tpu"
    out, code = _run(
        "--requirements", str(healthy["requirements"]), "--broker-url", "redis://127.0.0.1:1/0"
    )
    assert code == 1
    assert "FAIL  broker" in out
    assert 'fix: redis-cli -u "$CELERY_BROKER_URL" ping' in out
    assert "FAIL  device" in out
    assert "fix: set MAHTQA_DEVICE=cpu" in out


@pytest.mark.django_db(transaction=True)
def test_cli_process_exit_status_is_1_on_a_failed_check():
    """The real process and its exit status (no active model in the database: red)."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mahtqa.settings.test", "DATABASE_URL": url}
    proc = subprocess.run(
        [sys.executable, "manage.py", "verify_environment", "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    checks = {c["code"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["model"]["message"] == "no active model version"
    assert "1 check(s) failed: model" in proc.stderr


# --- beat: one report per queue -------------------------------------------------------------


def test_beat_sends_the_report_task_to_every_queue_with_its_routing_key(settings):
    from mahtqa.celery import app

    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values()
               if e["task"] == "apps.monitoring.tasks.environment_report_task"]  # fmt: skip
    assert sorted(e["options"]["queue"] for e in entries) == ["checks", "default", "inference"]
    for entry in entries:
        assert entry["schedule"] == settings.MAHTQA_ENV_REPORT_SECONDS == 300.0
        assert entry["kwargs"] == {"queue": entry["options"]["queue"]}
        route = app.amqp.router.route(dict(entry["options"]), entry["task"])
        assert route["queue"].name == entry["options"]["queue"]
        assert route["routing_key"] == entry["options"]["queue"]


@override_settings(MAHTQA_ENV_REPORT_SECONDS=60.0)
@pytest.mark.django_db
def test_stale_threshold_follows_the_interval(engineer_client):
    ok = _report(Check("python", GREEN, "Python 3.11.7"))
    worker_environment_record(hostname="w", queue="default", report=ok,
                              now=timezone.now() - timedelta(seconds=200))  # fmt: skip
    rows = engineer_client.get("/monitoring/workers/").context["rows"]
    assert (rows[0]["status"], rows[0]["stale"]) == (AMBER, True)
