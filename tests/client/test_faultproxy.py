"""The fault proxy's own contract: which requests it hits, and what the log says."""

from __future__ import annotations

import pytest
import requests
from support.faultproxy import FaultProxy
from support.serverproc import ServerProcess

from linkis_kernel.wire import API_PREFIX


def test_faults_hit_by_pattern_method_count_and_share(linkis_server: ServerProcess) -> None:
    headers = linkis_server.token_headers()
    with FaultProxy(linkis_server.url) as proxy:
        api = proxy.url + API_PREFIX
        proxy.inject("html503", r"datasource/dbs$", count=None, share=0.5)
        proxy.inject("html502", r"user/publicKey$", count=2, method="GET")
        dbs = [
            requests.get(f"{api}/datasource/dbs", headers=headers).status_code for _ in range(20)
        ]
        keys = [requests.get(f"{api}/user/publicKey").status_code for _ in range(3)]
        proxy.clear()
        after = requests.get(f"{api}/datasource/dbs", headers=headers).status_code
    assert 0 < dbs.count(503) < 20 and set(dbs) == {200, 503}
    assert keys == [502, 502, 200] and after == 200
    assert [r.status for r in proxy.requests] == [*dbs, *keys, after]
    assert [r.fault for r in proxy.requests][-4:] == ["html502", "html502", None, None]
    assert len(proxy.paths(r"publicKey$")) == 3


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultProxy("http://127.0.0.1:1").inject("explode")
