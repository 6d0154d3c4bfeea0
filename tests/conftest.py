import os
import threading

import pytest
from hypothesis import HealthCheck, settings

# Deterministic, deadline-free property tests: CI machines are shared and noisy, and a failure must
# reproduce. VIZ_HYPOTHESIS=thorough runs more examples locally.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=1000)
settings.load_profile(os.environ.get("VIZ_HYPOTHESIS", "ci"))


@pytest.fixture(autouse=True, scope="session")
def _torch_one_thread():
    """The oracles run on tiny tensors: torch's thread pool only adds waiting there (10-20x per call
    on a busy 2-core machine). Restored at the end of the session."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def server():
    """The explorer on an ephemeral loopback port, one per test module (test_serve, the browser tests)."""
    from viz.app import serve

    srv = serve.make_server(0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


CHROMIUM = "/usr/bin/chromium"        # Debian's Chromium, never a browser Playwright downloads
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Chromium through Playwright, one per test module; skipped where it is not installed."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (./tasks test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
