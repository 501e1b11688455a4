"""The LinkisManager endpoints of the embedded server: its engines in the Linkis source's shapes.

(docs/linkis-rest.md, "Engines") `EngineRestfulApi` (listUserEngines, killEngineConn,
rm/enginekill, listEMEngines), `RMMonitorRest` (rm/userresources, rm/applicationlist,
rm/engineType) and `ECResourceInfoRestfulApi` (ecinfo/ecrHistoryList). Every user sees and ends
only their own engines. Resources: an engine counts as the memory it uses (its resident set),
one core and one instance, against the Linkis default user limits (20 GiB, 10 cores) and the
server's `--max-engines-per-user` instances.
"""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime
from typing import Any

from .engineconns import EngineManager, engine_status
from .engines import ENGINE_RUN_TYPES
from .errors import ServiceError
from .history import now_ms
from .sessions import ENGINECONN_APPLICATION, EngineSession

MSG_KILLED = "Kill engineConn succeed."
ECM_APPLICATION = "linkis-cg-engineconnmanager"
MAX_MEMORY = 20 * 1024**3  # wds.linkis.rm.client.memory.max=20g
MAX_CORES = 10  # wds.linkis.rm.client.core.max
ENGINE_MEMORY = 1024**3  # what an engine asks for (wds.linkis.engineconn.java.driver.memory)
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_CREATOR_RE = re.compile(r"[A-Za-z0-9_]{0,64}")


def _resource(memory: int, cores: int, instances: int) -> dict[str, int]:
    return {"memory": memory, "cores": cores, "instances": instances}


class ManagerEndpoints:
    """Answers of the LinkisManager endpoints over one `EngineManager`."""

    def __init__(self, engines: EngineManager):
        self.engines = engines

    @property
    def _max(self) -> dict[str, int]:
        return _resource(MAX_MEMORY, MAX_CORES, self.engines.settings.max_per_user)

    def _node_resource(self, session: EngineSession) -> dict[str, Any]:
        used = _resource(session.memory(), 1, 1)
        maximum = self._max
        left = {k: max(0, maximum[k] - used[k]) for k in maximum}
        return {
            "id": session.record_id,
            "resourceType": "LoadInstance",
            "maxResource": maximum,
            "minResource": _resource(ENGINE_MEMORY, 1, 1),
            "usedResource": used,
            "lockedResource": _resource(0, 0, 0),
            "expectedResource": None,
            "leftResource": left,
            "createTime": session.started_ms,
            "updateTime": now_ms(),
            "maxApps": None,
            "numPendingApps": None,
            "numActiveApps": None,
        }

    # -- EngineRestfulApi -------------------------------------------------------------------
    def list_user_engines(self, user: str) -> dict[str, Any]:
        """linkisManager/listUserEngines: {"engines": [AMEngineNode]}."""
        return {"engines": [self._am_engine_node(s) for s in self.engines.sessions_of(user)]}

    def _am_engine_node(self, session: EngineSession) -> dict[str, Any]:
        key = session.key
        return {
            "serviceInstance": _service_instance(ENGINECONN_APPLICATION, session.instance),
            "emnode": {
                "serviceInstance": _service_instance(
                    ECM_APPLICATION, self.engines.manager_instance
                ),
                "owner": key.user,
                "mark": "process",
                "nodeStatus": "Running",
            },
            "labels": [
                {
                    "labelKey": "userCreator",
                    "stringValue": key.user_creator,
                    "feature": "CORE",
                    "featureKey": "feature",
                    "user": key.user,
                    "creator": key.creator,
                    "empty": False,
                },
                {
                    "labelKey": "engineType",
                    "stringValue": key.engine_label,
                    "feature": "CORE",
                    "featureKey": "feature",
                    "engineType": key.engine_type,
                    "version": key.version,
                    "empty": False,
                },
            ],
            "score": 0.0,
            "nodeStatus": engine_status(session),
            "lock": None,
            "owner": key.user,
            "mark": "process",
            "identifier": str(session.pid),
            "ticketId": session.ticket_id,
            "ecMetrics": None,
            "startTime": session.started_ms,
            "updateTime": now_ms() - int(session.idle_seconds() * 1000),  # last used, if idle
            "nodeResource": self._node_resource(session),
            "nodeTaskInfo": {
                "tasks": session.jobs_run,
                "runningTasks": 1 if session.holder is not None else 0,
                "pendingTasks": 0,
                "succeedTasks": 0,
                "failedTasks": 0,
            },
            "nodeOverLoadInfo": None,
            "nodeHealthyInfo": {"nodeHealthy": "Healthy", "msg": ""},
            "nodeDescription": None,
        }

    def kill_engine_conn(self, user: str, body: dict[str, Any]) -> tuple[str, dict]:
        """linkisManager/killEngineConn {applicationName, instance}: the caller's engine only."""
        for name in ("applicationName", "instance"):
            if not str(body.get(name) or "").strip():
                raise ServiceError(f"{name} cannot be null(请求参数{name}不能为空)", code=21001)
        instance = str(body["instance"]).strip()
        session = self.engines.find(instance)
        if session is None:
            raise ServiceError(
                f"EngineConn {instance} does not exist (it may have ended already); "
                "linkisManager/listUserEngines lists your engines"
            )
        if session.key.user != user:
            raise ServiceError(
                "You have no permission to kill EngineConn ServiceInstance("
                f"{ENGINECONN_APPLICATION}, {instance}, {session.started_ms})"
            )
        self.engines.kill(session, f"{user} ended it (linkisManager/killEngineConn)")
        return MSG_KILLED, {}

    def engine_kill(self, user: str, items: Any) -> tuple[str, dict]:
        """linkisManager/rm/enginekill [{engineInstance, ...}]: unknown engines and other users'
        are skipped, as Linkis skips engines it does not know."""
        if not isinstance(items, list):
            raise ServiceError("The request body must be a JSON array of {engineInstance} objects")
        for item in items:
            instance = str(item.get("engineInstance") or "") if isinstance(item, dict) else ""
            session = self.engines.find(instance.strip())
            if session is not None and session.key.user == user:
                self.engines.kill(session, f"{user} ended it (linkisManager/rm/enginekill)")
        return MSG_KILLED, {}

    def list_em_engines(self, user: str, is_admin: bool) -> dict[str, Any]:
        """linkisManager/listEMEngines: admins only, as in Linkis."""
        if not is_admin:
            raise ServiceError(
                "Only admin can search engine information(只有管理员才能查询所有引擎信息).",
                code=210003,
            )
        return {"engines": [self._am_engine_node_vo(s) for s in self.engines.sessions_of(None)]}

    def _am_engine_node_vo(self, session: EngineSession) -> dict[str, Any]:
        resource = self._node_resource(session)
        return {
            "emInstance": self.engines.manager_instance,
            "nodeStatus": engine_status(session),
            "lock": None,
            "labels": self._am_engine_node(session)["labels"],
            "applicationName": ENGINECONN_APPLICATION,
            "instance": session.instance,
            "resourceType": "LoadInstance",
            **{k: resource[k] for k in ("maxResource", "minResource", "usedResource")},
            **{k: resource[k] for k in ("lockedResource", "expectedResource", "leftResource")},
            "owner": session.key.user,
            "runningTasks": 1 if session.holder is not None else 0,
            "pendingTasks": 0,
            "succeedTasks": 0,
            "failedTasks": 0,
            "maxMemory": None,
            "usedMemory": resource["usedResource"]["memory"],
            "systemCPUUsed": None,
            "systemLeftMemory": None,
            "nodeHealthy": "Healthy",
            "msg": "",
            "startTime": session.started_ms,
            "engineType": session.key.engine_type,
            "mappingPorts": None,
            "mappingHost": None,
        }

    # -- RMMonitorRest ----------------------------------------------------------------------
    def user_resources(self, user: str) -> dict[str, Any]:
        """linkisManager/rm/userresources: {"userResources": [...]} grouped by user-creator."""
        groups: dict[str, dict[str, list[int]]] = {}  # engines' memory by user-creator, engine
        for session in self.engines.sessions_of(user):
            key = session.key
            user_creator = f"({key.user},{key.creator})"
            engine = f"({key.engine_type},{key.version})"
            groups.setdefault(user_creator, {}).setdefault(engine, []).append(session.memory())
        resources = []
        for user_creator, engines in groups.items():
            types = [
                {"engineType": engine, "percent": self._percent(memories)}
                for engine, memories in engines.items()
            ]
            every = [memory for memories in engines.values() for memory in memories]
            resources.append(
                {"userCreator": user_creator, "percent": self._percent(every), "engineTypes": types}
            )
        return {"userResources": resources}

    def _percent(self, memories: list[int]) -> str:
        """The largest share of the user's limits that engines with these memories take."""
        maximum = self._max
        shares = (sum(memories) / maximum["memory"], len(memories) / maximum["cores"],
                  len(memories) / maximum["instances"])  # fmt: skip
        return f"{max(shares):.2f}"

    def application_list(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        """linkisManager/rm/applicationlist {userCreator, engineType?}."""
        user_creator = str(body.get("userCreator") or "")
        engine_type = body.get("engineType")
        chosen = [
            s for s in self.engines.sessions_of(user)
            if f"({s.key.user},{s.key.creator})" == user_creator
            and (not engine_type or f"({s.key.engine_type},{s.key.version})" == engine_type)
        ]  # fmt: skip
        if not chosen:
            return {"applications": []}
        rows = [self._engine_instance(s) for s in chosen]
        used = _resource(sum(r["resource"]["usedResource"]["memory"] for r in rows),
                         len(rows), len(rows))  # fmt: skip
        application = {
            "engineInstances": rows,
            "usedResource": used,
            "maxResource": self._max,
            "minResource": _resource(ENGINE_MEMORY * len(rows), len(rows), len(rows)),
            "lockedResource": _resource(0, 0, 0),
        }
        return {
            "applications": [{"creator": chosen[0].key.creator, "applicationList": application}]
        }

    def _engine_instance(self, session: EngineSession) -> dict[str, Any]:
        return {
            "creator": session.key.creator,
            "engineType": session.key.engine_type,
            "instance": session.instance,
            "label": session.key.engine_label,
            "resource": self._node_resource(session),
            "status": engine_status(session),
            "startTime": time.strftime(
                "%a %b %d %H:%M:%S GMT %Y", time.gmtime(session.started_ms / 1000)
            ),
            "owner": session.key.user,
        }

    @staticmethod
    def engine_types() -> dict[str, Any]:
        """linkisManager/rm/engineType: the engine types this server runs."""
        return {"engineType": sorted(ENGINE_RUN_TYPES)}

    # -- ECResourceInfoRestfulApi -----------------------------------------------------------
    def ecr_history(self, user: str, is_admin: bool, params: dict[str, Any]) -> dict[str, Any]:
        """linkisManager/ecinfo/ecrHistoryList: the engines started today (by default)."""
        creator = params.get("creator") or ""
        if not _CREATOR_RE.fullmatch(creator):
            raise ServiceError(f"Invalid creator : {creator}")
        owner: str | None = user
        if is_admin:
            owner = creator or None
        page_now, page_size = params.get("pageNow") or 1, params.get("pageSize") or 20
        if page_now < 1 or page_size < 1:
            raise ServiceError("pageNow and pageSize must be at least 1")
        today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
        where = {
            "start": _date_ms(params.get("startDate"), today),
            "end": _date_ms(params.get("endDate"), datetime.now()),
            "service_instance": params.get("instance"),
            "engine_type": params.get("engineType"),
            "status": params.get("status"),
        }
        rows, total = self.engines.records.query(owner, where, page_now, page_size)
        return {"engineList": [_record_vo(row) for row in rows], "totalPage": total}


def _record_vo(row: sqlite3.Row) -> dict[str, Any]:
    memory = row["memory"] or ENGINE_MEMORY
    used = {"cores": 1, "instance": 1, "memory": memory}
    day = datetime.fromtimestamp(row["create_time"] / 1000).strftime("%Y%m%d")
    labels = f"{row['create_user']}-{row['creator']},{row['engine_type']}-{row['version']}"
    return {
        "id": row["id"],
        "createUser": row["create_user"],
        "labelValue": labels,
        "ticketId": row["ticket_id"],
        "serviceInstance": row["service_instance"],
        "usedResource": used,
        "requestResource": {"cores": 1, "instance": 1, "memory": ENGINE_MEMORY},
        "releasedResource": used if row["release_time"] is not None else None,
        "ecmInstance": row["ecm_instance"],
        "requestTimes": 1,
        "usedTimes": row["used_times"],
        "releaseTimes": 1 if row["release_time"] is not None else 0,
        "usedTime": row["used_time"],
        "createTime": row["create_time"],
        "releaseTime": row["release_time"],
        "logDirSuffix": f"{row['create_user']}/{day}/{row['engine_type']}/{row['ticket_id']}/logs",
        "engineType": row["engine_type"],
        "status": row["status"],
    }


def _date_ms(text: Any, default: datetime) -> int:
    if not text:
        return int(default.timestamp() * 1000)
    try:
        return int(datetime.strptime(str(text), _DATE_FORMAT).timestamp() * 1000)
    except ValueError:
        raise ServiceError(
            f"startDate and endDate must look like 2025-06-06 00:00:00, got {text!r}"
        ) from None


def _service_instance(application: str, instance: str) -> dict[str, Any]:
    return {
        "applicationName": application,
        "instance": instance,
        "registryTimestamp": 0,
        "mappingPorts": None,
        "mappingHost": None,
    }
