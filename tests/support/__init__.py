"""Helpers shared by the tests, imported as `support.<module>` (pytest puts `tests/` on the
import path through the rootdir `tests/conftest.py`).

* `serverproc`: a real `linkis-kernel serve` subprocess (`start_server`, `ServerProcess`), and
  polling a job over HTTP (`wait_for_state`, `history_state`, `stop_child`).
* `localsvc`: the embedded server's service used in-process (`LocalLinkis`).
* `inprocess`: the embedded server's HTTP app on a thread, with a `FakeClock` for its sessions.
* `bodies`: `entrance/submit` bodies, built by the project's own `build_submit_body`.
* `waiting`: `wait_until`, the one way tests wait for something to happen.
* `contract`: the Linkis example bodies in `tests/fixtures/linkis` and the JSON shape comparison.
* `faultproxy`: an HTTP proxy that injects gateway and network faults.
* `shells`: the in-process IPython shell with the extension loaded (`extension_loaded`).
* `jupyterenv`: private Jupyter directories and kernelspecs for tests that run Jupyter.
* `procfs`: the fields of `/proc/<pid>/stat` (`stat_fields`).
"""
