"""A real, private SLURM cluster on this machine for the integration test (Debian's slurm-wlm + munge).

One node on loopback with fake GPUs (character devices cloned from /dev/null, declared as GRES), its own
munged (own key and socket), its own ports, and every file (slurm.conf, state, logs, pid files) in one
temporary folder; a SLURM or munge already running here is left alone.
Clients find the cluster through $SLURM_CONF (`SlurmCluster.env`). The one file outside that folder is
/etc/slurm/slurm.conf, a copy of the test's: inside a job the executor plugin runs `srun` with every SLURM_*
variable removed (SLURM_CONF too), so srun reads the default path. What was there is moved aside and put back.
Everything is bounded by a timeout; `stop()` cancels jobs and stops each daemon by the pid it wrote.
Measured pitfalls this follows are in the project notes (slurm.md): EnforcePartLimits, DefMemPerCPU,
config_overrides, `slurmctld -c`, a gres.conf File line per fake GPU.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "munge"]
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by aslseg tests/slurm_cluster.py for a test cluster; removed when the test ends"
BINARIES = ["munged", "slurmctld", "slurmd", "slurmstepd", "sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun"]


class ClusterUnavailable(RuntimeError):
    """SLURM cannot be set up here (not root, packages not installable): a reason to skip, not a failure."""


def _run(command: list[str], timeout: float = 60, env: dict | None = None, check: bool = True):
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def ensure_installed(timeout: float = 600) -> None:
    """Install slurm-wlm and munge with apt when a binary is missing; ClusterUnavailable when that fails."""
    if os.geteuid() != 0:
        raise ClusterUnavailable("the SLURM integration test needs root (it installs and starts SLURM daemons)")
    if all(shutil.which(name) for name in BINARIES):
        return
    if not shutil.which("apt-get"):
        raise ClusterUnavailable("slurm-wlm/munge are not installed and there is no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    try:
        if _run(install, timeout, env, check=False).returncode != 0:
            _run(["apt-get", "update"], timeout, env, check=False)
            result = _run(install, timeout, env, check=False)
            if result.returncode != 0:
                raise ClusterUnavailable(f"apt-get install {' '.join(PACKAGES)} failed:\n{result.stderr[-2000:]}")
    except subprocess.TimeoutExpired as error:
        raise ClusterUnavailable(f"installing {' '.join(PACKAGES)} took over {timeout:.0f} s") from error
    missing = [name for name in BINARIES if not shutil.which(name)]
    if missing:
        raise ClusterUnavailable(f"after installing {' '.join(PACKAGES)}, still missing: {', '.join(missing)}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by a slow PID 1) counts as stopped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class SlurmCluster:
    """One-node SLURM cluster in `root` with the given partitions; `gpus` fake GPUs on the node."""

    def __init__(self, partitions: list[str], cpus: int = 8, memory_mb: int = 64000, gpus: int = 2):
        self.partitions = list(dict.fromkeys(partitions))
        self.cpus, self.memory_mb, self.gpus = cpus, memory_mb, gpus
        self.root = Path(tempfile.mkdtemp(prefix="aslseg-slurm-"))
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.pid_files: dict[str, Path] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.system_conf_backup: Path | None = None
        self.wrote_system_conf = False

    # ---- set-up -------------------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> "SlurmCluster":
        try:
            self._write_munge()
            self._start_munge(timeout)
            self._write_slurm()
            self._install_system_conf()
            self.pid_files["slurmctld"] = self.root / "slurmctld.pid"
            _run(["slurmctld", "-c", "-f", str(self.conf)], timeout, self.env)
            _wait_until(lambda: _run(["scontrol", "ping"], 10, self.env, check=False).stdout.count("UP"),
                        timeout, "slurmctld to answer")
            self.pid_files["slurmd"] = self.root / "slurmd.pid"
            _run(["slurmd", "-f", str(self.conf), "-N", self.node], timeout, self.env)
            _wait_until(self._node_idle, timeout, f"node {self.node} to be idle")
        except BaseException:
            self.stop()
            raise
        return self

    def _write_munge(self) -> None:
        munge = pwd.getpwnam("munge")
        directory = self.root / "munge"
        directory.mkdir()
        directory.chmod(0o755)  # munged wants its socket folder searchable by all (clients connect)
        key = directory / "munge.key"
        key.write_bytes(os.urandom(1024))  # a private key: this cluster never talks to a real one
        key.chmod(0o400)
        for path in (directory, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        self.root.chmod(0o755)

    def _start_munge(self, timeout: float) -> None:
        directory = self.root / "munge"
        self.munge_socket = directory / "munge.socket"
        self.pid_files["munged"] = directory / "munged.pid"
        _run(["runuser", "-u", "munge", "--", "munged", f"--socket={self.munge_socket}",
              f"--key-file={directory / 'munge.key'}", f"--pid-file={self.pid_files['munged']}",
              f"--log-file={directory / 'munged.log'}", f"--seed-file={directory / 'munged.seed'}"], timeout)
        _wait_until(self.munge_socket.exists, timeout, "munged's socket")

    def _write_slurm(self) -> None:
        devices = []
        for index in range(self.gpus):
            device = self.root / f"fake-gpu{index}"
            subprocess.run(["mknod", "-m", "0666", str(device), "c", "1", "3"], check=True, timeout=10)
            devices.append(str(device))
        (self.root / "state").mkdir()
        (self.root / "spool").mkdir()
        node_gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        lines = [
            "ClusterName=aslsegtest",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MailProg=/bin/true",
            "ReturnToService=2",
            "MpiDefault=none",
            # Without these the test hangs rather than fails: an impossible request must be refused at
            # submission, a job without --mem must not take the whole node, the node may declare more
            # CPUs/GPUs than the machine has, and finished jobs stay visible to squeue for the status checks.
            "EnforcePartLimits=ALL",
            "DefMemPerCPU=1000",
            "SlurmdParameters=config_overrides",
            "MinJobAge=900",
            "InactiveLimit=0",
            "KillWait=5",
            "Waittime=0",
            f"GresTypes=gpu" if self.gpus else "",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb}{node_gres}"
            " State=UNKNOWN",
        ]
        for index, partition in enumerate(self.partitions):
            default = "YES" if index == 0 else "NO"
            lines.append(f"PartitionName={partition} Nodes={self.node} Default={default} MaxTime=INFINITE State=UP")
        self.conf.write_text("\n".join(line for line in lines if line) + "\n")
        gres = ["AutoDetect=off"] + ([f"NodeName={self.node} Name=gpu File={','.join(devices)}"] if devices else [])
        (self.root / "gres.conf").write_text("\n".join(gres) + "\n")

    def _install_system_conf(self) -> None:
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        if SYSTEM_CONF.exists() and MARKER not in SYSTEM_CONF.read_text(errors="replace"):  # not a stale copy
            self.system_conf_backup = SYSTEM_CONF.with_name(f"slurm.conf.aslseg-test-backup-{os.getpid()}")
            SYSTEM_CONF.rename(self.system_conf_backup)
        SYSTEM_CONF.write_text(f"{MARKER}\n" + self.conf.read_text())
        self.wrote_system_conf = True

    def _restore_system_conf(self) -> None:
        if self.wrote_system_conf:
            SYSTEM_CONF.unlink(missing_ok=True)
            self.wrote_system_conf = False
        if self.system_conf_backup is not None:
            self.system_conf_backup.rename(SYSTEM_CONF)
            self.system_conf_backup = None

    def _node_idle(self) -> bool:
        states = _run(["sinfo", "-h", "-N", "-o", "%t"], 10, self.env, check=False).stdout.split()
        return bool(states) and all(state == "idle" for state in states)

    # ---- queries ------------------------------------------------------------------------------------------
    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job slurmctld still knows (running or finished): id -> name, state, comment, gres."""
        fields = "JobID:|,Name:|,State:|,Comment:|,tres-per-job:|,Partition:|"
        out = _run(["squeue", "--states=all", "-h", "-O", fields], 30, self.env).stdout
        jobs = {}
        for line in out.splitlines():
            job_id, name, state, comment, tres, partition = (part.strip() for part in line.split("|")[:6])
            jobs[job_id] = {"name": name, "state": state, "comment": comment, "tres": tres, "partition": partition}
        return jobs

    def log(self) -> str:
        path = self.root / "slurmctld.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- tear-down ----------------------------------------------------------------------------------------
    def stop(self, timeout: float = 20) -> None:
        """Cancel what is left, stop each daemon by its pid file, delete the folder. Safe to call twice."""
        if "slurmctld" in self.pid_files:
            subprocess.run(["scancel", "--quiet", f"--user={os.getuid()}"], env=self.env, timeout=30,
                           capture_output=True)
        for name in ("slurmd", "slurmctld", "munged"):
            path = self.pid_files.pop(name, None)
            try:
                pid = int(path.read_text().split()[0]) if path and path.exists() else None
            except (ValueError, IndexError):
                pid = None
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
                try:
                    _wait_until(lambda: not _alive(pid), timeout, f"{name} (pid {pid}) to stop", 0.2)
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._restore_system_conf()
        shutil.rmtree(self.root, ignore_errors=True)
