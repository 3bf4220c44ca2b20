"""make faults: the cluster under steady Locust load, one fault at a time, each checked with SQL.

The cluster runs on a private PostgreSQL cluster (pg_createcluster, port 8111) and a private
redis-server (port 8110), so that they can be restarted and stopped: never the shared servers.
The faults, 30 s apart (--settle):
  1. kill -9 a web node (its whole process group); nginx routes around it; it comes back;
  2. kill -9 the Celery worker running an export; the export must complete within 2 minutes;
  3. stop Redis for 30 s, asking for an export meanwhile; it must be sent once Redis is back;
  4. restart PostgreSQL (fast shutdown: every connection cut).
After each: no judgment lost (every submit a rater saw succeed has its row) or doubled (one per
lease, one per rater and comparison), no comparison over its overlap, every export complete and
byte-identical (sha256) to a clean run. Per fault: failed attempts the page retried, failures a
rater saw, and the recovery time (from the fault to the last failure it caused).

    make faults FAULTS_ARGS="--raters 300"
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from loadtest import common
from loadtest.services import PrivatePostgres, PrivateRedis

NGINX_PORT, WEB_PORTS, REDIS_PORT, PG_PORT = 8114, (8115, 8116), 8110, 8111
EXPORT_TIMEOUT = 180


def _cluster(action: str, env: dict[str, str]) -> None:
    subprocess.run(["bash", "deploy/cluster.sh", action], cwd=common.ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def _pid(cluster_dir: Path, name: str) -> int:
    return int((cluster_dir / "pids" / f"{name}.pid").read_text())


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as r:
            return r.status == 200
    except OSError:
        return False


def _wait(predicate, seconds: float, step: float = 0.2) -> float | None:
    """Seconds until predicate() is true, or None after `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if predicate():
            return round(time.monotonic() - start, 1)
        time.sleep(step)
    return None


class Suite:
    def __init__(
        self, args, cluster_env: dict[str, str], cluster_dir: Path, pg, redis, events: Path
    ):
        self.args, self.env, self.dir, self.pg, self.redis = (
            args,
            cluster_env,
            cluster_dir,
            pg,
            redis,
        )
        self.events = events
        from comparisons.models import Project

        self.export_project = Project.objects.get(slug="load-export")
        self.load_project = Project.objects.get(slug="load")
        self.reference: str | None = None

    # -- exports ------------------------------------------------------------------------
    def request_export(self, *, send: bool = True):
        from comparisons.exports import create_export_job
        from comparisons.tasks import send_export

        job = create_export_job(project=self.export_project, format="judgments", options={})
        sent = send_export(job.pk) if send else False
        return job, sent

    def wait_export(self, job, seconds: float = EXPORT_TIMEOUT):
        from comparisons.models import JobStatus

        def done():
            job.refresh_from_db()
            return job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)

        took = _wait(done, seconds, 0.5)
        return took, job

    def clean_export(self) -> dict:
        from comparisons.models import Judgment

        job, _ = self.request_export()
        took, job = self.wait_export(job)
        assert job.status == "succeeded", job.error
        # An empty reference would make "byte-identical" compare empty files.
        expected = Judgment.objects.filter(project=self.export_project).count()
        assert expected and job.row_count == expected, (job.row_count, expected)
        self.reference = job.sha256
        return {"job": job.pk, "seconds": took, "sha256": job.sha256, "rows": job.row_count}

    # -- the faults ---------------------------------------------------------------------
    def kill_web_node(self) -> dict:
        port = WEB_PORTS[0]
        os.killpg(_pid(self.dir, f"web-{port}"), signal.SIGKILL)
        time.sleep(20)  # nginx routes around it meanwhile
        _cluster("revive", self.env)
        back = _wait(lambda: _ready(port), 60)
        return {"node": port, "down_s": 20, "node_ready_again_after_revive_s": back}

    def kill_worker_during_export(self) -> dict:
        from comparisons.models import ExportJob
        from comparisons.tasks import run_export

        job, _ = self.request_export(send=False)
        result = run_export.apply_async((job.pk,))
        ExportJob.objects.filter(pk=job.pk).update(sent_at=job.created_at)
        running = _wait(
            lambda: ExportJob.objects.filter(pk=job.pk, status="running").exists(), 60, 0.05
        )
        victim = next(
            (n for n in (1, 2) if result.id in (self.dir / "logs" / f"worker-{n}.log").read_text()),
            1,
        )
        killed_at = time.monotonic()
        os.killpg(_pid(self.dir, f"worker-{victim}"), signal.SIGKILL)
        partials_at_kill = sorted(
            p.name for p in (Path(self.env["MEDIA_ROOT"]) / "tmp" / "exports").glob("*")
        )
        time.sleep(3)
        _cluster("revive", self.env)  # the dead worker starts again, as systemd would
        took, job = self.wait_export(job)
        resumed_in = round(time.monotonic() - killed_at, 1) if took is not None else None
        partials_after = sorted(
            p.name for p in (Path(self.env["MEDIA_ROOT"]) / "tmp" / "exports").glob("*")
        )
        return {
            "job": job.pk, "worker": victim, "running_after_s": running, "status": job.status,
            "completed_after_kill_s": resumed_in, "within_2_minutes": resumed_in is not None and resumed_in <= 120,
            "byte_identical": job.sha256 == self.reference,
            "partials_at_kill": partials_at_kill, "partials_after": partials_after,
        }  # fmt: skip

    def stop_redis(self) -> dict:
        self.redis.stop()
        started = time.monotonic()
        time.sleep(2)
        job, sent = self.request_export()  # the broker is down: recorded, not sent
        time.sleep(max(0, 30 - (time.monotonic() - started)))
        self.redis.start()
        ready = [_wait(lambda p=p: _ready(p), 60) for p in WEB_PORTS]
        took, job = self.wait_export(job)
        return {
            "down_s": 30, "export_sent_while_down": sent, "readyz_200_after_s": ready,
            "export_status": job.status, "export_done_after_redis_back_s": took,
            "byte_identical": job.sha256 == self.reference,
        }  # fmt: skip

    def restart_postgres(self) -> dict:
        started = time.monotonic()
        self.pg.restart()
        restarted = round(time.monotonic() - started, 1)
        ready = [_wait(lambda p=p: _ready(p), 60) for p in WEB_PORTS]
        return {"restart_s": restarted, "readyz_200_after_s": ready}

    # -- the checks ---------------------------------------------------------------------
    def sql_checks(self) -> dict:
        from django.db import connection
        from django.db.models import Count, F, Q

        from comparisons.models import Comparison, ExportJob, Judgment

        connection.close()  # a fresh connection: the server may have restarted
        lost_ids = set()
        seen_ok = set()
        for line in self.events.read_text().splitlines():
            _, name, ok, _, assignment = line.split(",")
            if name == "submit" and ok == "1" and assignment:
                seen_ok.add(int(assignment))
        recorded = set(
            Judgment.objects.filter(assignment_id__in=seen_ok).values_list(
                "assignment_id", flat=True
            )
        )
        lost_ids = seen_ok - recorded
        doubled_per_lease = (
            Judgment.objects.values("assignment_id").annotate(n=Count("pk")).filter(n__gt=1).count()
        )
        doubled_per_rater = (
            Judgment.objects.values("rater_id", "comparison_id")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
            .count()
        )
        over_overlap = (
            Comparison.objects.filter(project=self.load_project)
            .annotate(counted=Count("judgments", filter=Q(judgments__counted=True)))
            .filter(
                Q(counted__gt=F("project__overlap")) | Q(judged_count__gt=F("project__overlap"))
            )
            .count()
        )
        exports = list(
            ExportJob.objects.filter(project=self.export_project).values_list(
                "pk", "status", "sha256"
            )
        )
        return {
            "submits_seen_ok": len(seen_ok), "lost": len(lost_ids), "doubled_per_lease": doubled_per_lease,
            "doubled_per_rater_and_comparison": doubled_per_rater, "comparisons_over_overlap": over_overlap,
            "exports": len(exports),
            "exports_incomplete": [pk for pk, status, _ in exports if status != "succeeded"],
            "exports_differing": [pk for pk, status, sha in exports if status == "succeeded" and sha != self.reference],
        }  # fmt: skip


def _errors_between(events: Path, start: float, end: float) -> dict:
    attempts = failures = 0
    last = None
    for line in events.read_text().splitlines():
        at, name, ok, *_ = line.split(",")
        at = float(at)
        if not start <= at < end or ok == "1":
            continue
        if name.endswith("-attempt-failed"):
            attempts += 1
        else:
            failures += 1
        last = at
    return {
        "failed_attempts_retried": attempts,
        "failures_seen_by_raters": failures,
        "recovery_s": round(last - start, 1) if last is not None else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=300)
    parser.add_argument("--comparisons", type=int, default=40000)
    parser.add_argument("--export-comparisons", type=int, default=2000)
    parser.add_argument("--settle", type=int, default=30)
    parser.add_argument(
        "--out", type=Path, default=common.ROOT / "loadtest" / "results" / "faults.json"
    )
    args = parser.parse_args()
    work = common.ROOT / "var" / "faults"
    cluster_dir = common.ROOT / "var" / "cluster-faults"
    events = work / "events.csv"
    work.mkdir(parents=True, exist_ok=True)
    events.write_text("")
    pg = PrivatePostgres("raterhub_prod_faults", PG_PORT)
    redis = PrivateRedis(REDIS_PORT, work / "redis")
    base_env = {
        **os.environ, "CLUSTER_DIR": str(cluster_dir), "CLUSTER_DATABASE_URL": pg.url("raterhub_faults"),
        "CLUSTER_REDIS_URL": redis.url, "CLUSTER_NGINX_PORT": str(NGINX_PORT),
        "CLUSTER_WEB_PORTS": " ".join(map(str, WEB_PORTS)),
    }  # fmt: skip
    locust = None
    report: dict = {"command": "make faults", "raters": args.raters, "think_time_s": [5, 15]}
    try:
        pg.create()
        redis.start()
        _cluster("start", base_env)
        env = {
            **common.cluster_env(cluster_dir),
            **{k: v for k, v in base_env.items() if k.startswith("CLUSTER_")},
        }
        sessions = work / "sessions.json"
        common.seed(env, "--raters", str(args.raters), "--comparisons", str(args.comparisons),
                    "--export-comparisons", str(args.export_comparisons), "--sessions-file", str(sessions))  # fmt: skip
        os.environ.update(env)  # this process reads the cluster's database for the checks
        import django

        django.setup()
        suite = Suite(args, env, cluster_dir, pg, redis, events)
        report["clean_export"] = suite.clean_export()
        locust = common.locust(env, users=args.raters, seconds=3600, prefix=work / "locust", background=True,
                               extra_env={"LOADTEST_SESSIONS": str(sessions), "LOADTEST_EVENTS": str(events)})  # fmt: skip
        time.sleep(common.steady_after(args.raters))  # everyone started, steady
        report["load_average_start"] = common.load_average()
        report["faults"] = []
        for fault in (
            suite.kill_web_node,
            suite.kill_worker_during_export,
            suite.stop_redis,
            suite.restart_postgres,
        ):
            started = time.time()
            print(f"fault: {fault.__name__}", flush=True)
            detail = fault()
            time.sleep(args.settle)
            ended = time.time()
            entry = {"fault": fault.__name__, **detail, **_errors_between(events, started, ended),
                     "checks": suite.sql_checks(), "load_average": common.load_average()}  # fmt: skip
            report["faults"].append(entry)
            print(json.dumps(entry), flush=True)
    finally:
        if locust is not None:
            locust.send_signal(signal.SIGTERM)
            try:
                locust.wait(timeout=60)
            except subprocess.TimeoutExpired:
                locust.kill()
        subprocess.run(["bash", "deploy/cluster.sh", "stop"], cwd=common.ROOT, env=base_env,
                       stdout=subprocess.DEVNULL, check=False)  # fmt: skip
        redis.stop()
        pg.drop()
    if (work / "locust_stats.csv").exists():
        report["locust"] = common.read_stats(work / "locust")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
