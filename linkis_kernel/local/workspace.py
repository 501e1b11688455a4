"""`Workspace`: the embedded server's filesystem service over each user's own area.

Directory trees, result-set pages and persisted logs; every path is confined to the user's
area by `Layout.user_path`. The download of a whole result set (`resultsetToExcel`) starts from
`result_file` here and is streamed by the HTTP layer.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..wire import NULL_MARKER, OPEN_FILE_DEFAULT_PAGE_SIZE, OPEN_FILE_MAX_PAGE_SIZE, RESULT_TABLE
from .dolphin import MAX_PAGE_BYTES, DolphinFormatError, PageTooLarge, read_page
from .errors import ServiceError
from .logfile import OPEN_LOG_MAX_BYTES, read_whole_log
from .paths import Layout, schema_path


class Workspace:
    """Dir trees, openFile, openLog and result files of the users' areas under `layout`."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def dir_tree(self, user: str, path: str) -> dict:
        """filesystem/getDirFileTrees (docs/linkis-rest.md, "Result files"); None for a missing
        directory."""
        folder = self.layout.user_path(user, path)
        if not folder.is_dir():
            return {"dirFileTrees": None}
        try:
            children = _children(folder)
        except OSError as exc:
            raise ServiceError(f"The directory {path} cannot be listed: {_reason(exc)}") from None
        tree = {
            "name": folder.name,
            "path": schema_path(folder),
            "properties": None,
            "children": children,
            "isLeaf": False,
            "parentPath": None,
        }
        return {"dirFileTrees": tree}

    def result_file(self, user: str, path: str) -> Path:
        """The confined local path of a readable `.dolphin` result set."""
        file = self.layout.user_path(user, path)
        if file.suffix != ".dolphin":
            raise ServiceError(f"{path} is not a result set: only .dolphin files can be read here")
        if not file.is_file():
            raise ServiceError(f"The result set {path} does not exist")
        return file

    def open_file(
        self,
        user: str,
        path: str,
        page: int = 1,
        page_size: int = OPEN_FILE_DEFAULT_PAGE_SIZE,
        null_value: str = "",
    ) -> dict:
        """filesystem/openFile (docs/linkis-rest.md, "Result files"): one page of a result set."""
        if page_size > OPEN_FILE_MAX_PAGE_SIZE:
            raise ServiceError(
                "The result set exceeds 100,000 rows and page viewing is currently not "
                "supported. Please download to view or view in the shared directory"
                "(结果集行数超过100,000行，暂不支持页面查看。请下载查看或在共享目录中查看)",
                code=80034,
            )
        if page < 1 or page_size < 1:
            raise ServiceError(
                f"page and pageSize must be at least 1 (got page={page}, pageSize={page_size})"
            )
        file = self.result_file(user, path)
        try:
            type_code, columns, rows = read_page(file, page, page_size)
        except PageTooLarge:
            raise ServiceError(
                f"Page {page} of the result set {path} holds more than "
                f"{MAX_PAGE_BYTES >> 20} MiB, more than one answer may carry: ask for fewer "
                f"rows per page (pageSize, now {page_size})"
            ) from None
        except (DolphinFormatError, OSError) as exc:
            raise ServiceError(f"The result set {path} cannot be read: {_reason(exc)}") from None
        null = {"": "NULL", "BLANK": "", NULL_MARKER: None}.get(null_value, null_value)
        content = [[null if c is None else c for c in r] for r in rows]
        data: dict = {}
        if type_code == RESULT_TABLE:
            data["metadata"] = [
                {
                    "columnName": c.name,
                    "comment": "NULL" if c.comment is None else c.comment,
                    "dataType": c.data_type,
                }
                for c in columns or []
            ]
            data["fileContent"] = content
            data["totalColumn"] = len(columns or [])
        else:
            data["metadata"] = "NULL"
            data["fileContent"] = content
        data.update(type=type_code, totalLine=len(content), page=page, totalPage=0)
        return data

    def open_log(self, user: str, path: str) -> dict:
        """filesystem/openLog (docs/linkis-rest.md, "Logs"): the whole persisted log, split by
        level; a log over 30 MB is refused (80033), as Linkis does."""
        file = self.layout.user_path(user, path)
        if not file.is_file():
            raise ServiceError(f"The log file {path} does not exist")
        try:
            if file.stat().st_size > OPEN_LOG_MAX_BYTES:
                raise ServiceError(
                    "The log file exceeds 30MB and is too large and cannot be opened, path : "
                    f"{path} (日志文件超过30M，文件太大暂不支持打开查看，文件地址：{path})",
                    code=80033,
                )
            return {"log": read_whole_log(file)}
        except OSError as exc:
            raise ServiceError(f"The log file {path} cannot be read: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    """Why a file failed, without the server-side path an OSError's text carries."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)


def _children(folder: Path) -> list[dict]:
    """One level of a directory as DirFileTree children, hidden files left out."""
    parent = schema_path(folder)
    children = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            is_file = entry.is_file()
            stat = entry.stat()
            props = (
                {"size": str(stat.st_size), "modifytime": str(int(stat.st_mtime * 1000))}
                if is_file
                else {}
            )
            children.append(
                {
                    "name": entry.name,
                    "path": f"{parent}/{entry.name}",
                    "properties": props,
                    "children": None,
                    "isLeaf": is_file,
                    "parentPath": parent,
                }
            )
    return children
