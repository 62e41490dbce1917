"""The file side of transfers: hashing in steps, a prefix's hash state, and a
file shorter than the prefix asked for."""

import hashlib
import os

import pytest

from client.transfers import TransferError
from client.transfers.files import HASH_CHUNK, file_sha256, hash_step, prefix_state


def test_hash_steps_add_up_to_the_whole_file(tmp_path):
    data = os.urandom(2 * HASH_CHUNK + 123)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    digest = hashlib.sha256()
    steps = []
    with open(path, "rb") as fh:
        while step := hash_step(fh, digest, HASH_CHUNK + 7):
            steps.append(step)
    assert steps == [HASH_CHUNK + 7, HASH_CHUNK + 7, 123 - 14]
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_prefix_state_and_a_file_shorter_than_the_prefix(tmp_path):
    data = os.urandom(HASH_CHUNK + 5)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    prefix = prefix_state(path, HASH_CHUNK + 1)
    assert prefix.hexdigest() == hashlib.sha256(data[: HASH_CHUNK + 1]).hexdigest()
    with pytest.raises(TransferError, match="shorter than"):
        prefix_state(path, len(data) + 1)
