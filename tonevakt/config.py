"""Parse `config.yaml` once into typed, validated settings.

Unknown keys and bad values are errors that name the key, the file and, where YAML tells us, the line.
`--config PATH` or the environment variable `TONEVAKT_CONFIG` select another file.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tonevakt.errors import ConfigError
from tonevakt.limits import MAX_FILE_ROWS
from tonevakt.models import Source, SourceKind, Voice

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "config.yaml"
ENV_VAR = "TONEVAKT_CONFIG"
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


class _Strict(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` is no value for any number here (a timeout of .inf made every fetch
    # fail with OverflowError); every number also has an upper bound below.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DatabaseSettings(_Strict):
    path: str = "data/tonevakt.duckdb"  # the pipeline's database (one writer at a time)
    snapshot: str = "data/analyst.duckdb"  # read-only copy published after every pass
    exports: str = "data/exports"  # Parquet exports published with the snapshot
    lock_timeout_s: float = Field(300.0, gt=0, le=86_400)  # how long to wait for another process's lock


class HttpSettings(_Strict):
    user_agent: str = "Tonevakt/0.1 (media monitoring for Brukerutvalget i Helse Midt-Norge)"
    contact: str = Field("", description="contact address added to the User-Agent")
    connect_timeout_s: float = Field(10.0, gt=0, le=3_600)
    read_timeout_s: float = Field(20.0, gt=0, le=3_600)
    total_timeout_s: float = Field(60.0, gt=0, le=3_600)
    max_body_bytes: int = Field(10_000_000, gt=0, le=1_000_000_000)
    max_redirects: int = Field(5, ge=0, le=20)
    per_host_interval_s: float = Field(1.0, ge=0, le=3_600)
    max_concurrency: int = Field(8, ge=1, le=64)
    max_retry_after_s: float = Field(120.0, ge=0, le=86_400)
    allow_private_addresses: bool = False  # tests only: allow loopback/private targets
    respect_robots: bool = True


class CollectSettings(_Strict):
    # Each source's collector stops starting fetches after this long, and a fetch still running then is cut;
    # what is left (article pages, feed pages) waits for the next pass as pending items.
    source_budget_s: float = Field(120.0, gt=0, le=86_400)
    # The whole collection of a pass ends by this long after it began: sources not started by then are
    # first in the next pass, the running ones are cut as by their budget.
    pass_deadline_s: float = Field(600.0, gt=0, le=86_400)
    # A failed item (an article page, a later feed page) is tried again with backoff (the source's interval
    # × 2^(attempts − 1), at most 24 h) until it succeeds or has failed this many times.
    max_item_attempts: int = Field(6, ge=1, le=100)

    @model_validator(mode="after")
    def _budget_within_deadline(self) -> CollectSettings:
        if self.source_budget_s > self.pass_deadline_s:
            raise ValueError("source_budget_s cannot be longer than pass_deadline_s")
        return self


class SourceSettings(_Strict):
    id: str
    kind: SourceKind
    voice: Voice
    name: str = ""
    region: str | None = None
    url: str | None = None
    enabled: bool = True
    full_text: Literal["never", "relevant", "always"] = "relevant"
    interval_minutes: int = Field(60, ge=1, le=525_600)  # at most a year
    respect_robots: bool = True
    include: str | None = None
    sitemap: str | None = None
    app_id: str | None = None
    country: str = "no"
    max_pages: int = Field(10, ge=1, le=50)
    path: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    paywalled: bool = False
    relevance: Literal["match", "always"] = "match"
    # files: rows per feedback file, more is refused
    max_rows: int = Field(MAX_FILE_ROWS, ge=1, le=10_000_000)

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        if not _ID_RE.match(v):
            raise ValueError("must be lower-case letters, digits, '-' or '_'")
        return v

    @field_validator("url")
    @classmethod
    def _url_ok(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://", v):
            raise ValueError("must start with http:// or https://")
        return v

    @field_validator("include")
    @classmethod
    def _regex_ok(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from e
        return v

    @model_validator(mode="after")
    def _kind_needs(self) -> SourceSettings:
        if self.kind in ("rss", "news_search", "web") and not self.url:
            raise ValueError(f"a '{self.kind}' source needs 'url'")
        if self.kind == "appstore" and not self.app_id:
            raise ValueError("an 'appstore' source needs 'app_id'")
        if self.kind == "files" and not self.path:
            raise ValueError("a 'files' source needs 'path' (the inbox folder)")
        return self

    def to_source(self) -> Source:
        return Source(**self.model_dump())


class TaxonomyEntry(_Strict):
    label: str  # Norwegian label shown in reports
    terms: list[str] = Field(min_length=1)  # words/stems/phrases; '*' suffix = any ending


class RelevanceSettings(_Strict):
    # Boolean query (AND, OR, NOT, "phrases", NEAR/n, parentheses, * for endings).
    query: str
    min_score: int = Field(1, ge=1, le=1_000)


class SentimentSettings(_Strict):
    backend: Literal["embedded", "transformers"] = "embedded"
    model: str = "tonevakt-e5-small-tone"  # embedded: name of a shipped model; transformers: hub id/folder
    revision: str | None = None
    trust_remote_code: bool = False
    max_length: int = Field(256, ge=8, le=4096)
    batch_size: int = Field(32, ge=1, le=1024)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    label_map: dict[str, Literal["negative", "neutral", "positive"]] = Field(default_factory=dict)
    context_sentences: int = Field(1, ge=0, le=5)
    max_passages: int = Field(8, ge=1, le=64)


class IntervalOrCron(_Strict):
    cron: str | None = None  # crontab, in schedule.timezone
    interval_seconds: int | None = Field(None, ge=1, le=31_536_000)  # at most a year

    @model_validator(mode="after")
    def _one(self) -> IntervalOrCron:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give exactly one of 'cron' or 'interval_seconds'")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError("cron needs five fields: minute hour day month weekday")
        return self


class ScheduleSettings(_Strict):
    timezone: str = "Europe/Oslo"
    collect: IntervalOrCron = IntervalOrCron(cron="*/30 * * * *")
    score: IntervalOrCron = IntervalOrCron(cron="5,35 * * * *")
    report: IntervalOrCron = IntervalOrCron(cron="0 7 * * mon")
    snapshot: IntervalOrCron = IntervalOrCron(cron="10,40 * * * *")
    misfire_grace_s: int = Field(600, ge=1, le=86_400)

    @field_validator("timezone")
    @classmethod
    def _tz_ok(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v


class SmtpSettings(_Strict):
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password_env: str | None = None  # name of the environment variable that holds the password
    sender: str
    recipients: list[str] = Field(min_length=1)


class ReportSettings(_Strict):
    out_dir: str = "reports"
    dashboard_dir: str = "reports/dashboard"
    weeks: int = Field(12, ge=2, le=104)
    min_n: int = Field(5, ge=1, le=100_000)  # a week with fewer documents than this is flagged as thin
    baseline_weeks: int = Field(8, ge=2, le=52)
    spike_factor: float = Field(2.0, gt=1, le=1_000)
    tone_drop: float = Field(0.2, gt=0, le=2)
    pdf: bool = True
    smtp: SmtpSettings | None = None


class Settings(_Strict):
    database: DatabaseSettings = DatabaseSettings()
    http: HttpSettings = HttpSettings()
    collect: CollectSettings = CollectSettings()
    relevance: RelevanceSettings
    topics: dict[str, TaxonomyEntry] = Field(default_factory=dict)
    regions: dict[str, TaxonomyEntry] = Field(default_factory=dict)
    sources: list[SourceSettings] = Field(default_factory=list)
    sentiment: SentimentSettings = SentimentSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    report: ReportSettings = ReportSettings()

    # Where the file was; relative paths in the file are resolved against its folder.
    base_dir: str = Field(".", exclude=True)
    file: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _unique_ids(self) -> Settings:
        seen: set[str] = set()
        for s in self.sources:
            if s.id in seen:
                raise ValueError(f"source id {s.id!r} appears twice")
            seen.add(s.id)
            if s.region is not None and self.regions and s.region not in self.regions:
                raise ValueError(f"source {s.id!r}: region {s.region!r} is not one of {sorted(self.regions)}")
        return self

    def path(self, value: str) -> Path:
        """Resolve a path from the config file against the file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def db_path(self) -> Path:
        return self.path(self.database.path)

    @property
    def snapshot_path(self) -> Path:
        return self.path(self.database.snapshot)

    @property
    def exports_path(self) -> Path:
        return self.path(self.database.exports)

    @property
    def models_path(self) -> Path:
        """Tone heads adapted to this installation's human labels (`tonevakt model adapt`), beside the database."""
        return self.db_path.parent / "models"

    def source_records(self) -> list[Source]:
        return [s.to_source() for s in self.sources]

    def source(self, source_id: str) -> Source:
        for s in self.sources:
            if s.id == source_id:
                return s.to_source()
        raise ConfigError(f"no source with id {source_id!r} in {self.file or 'the configuration'}")


# --- loading -------------------------------------------------------------------------------------


# Aliases may add at most this many nodes to the document when expanded. A config needs a few (shared source
# defaults); an "alias bomb" (9 aliases to 9 aliases to ... 8 levels deep) expands a 1 KB file to 43 million
# values, and every step after parsing (validation, the line-number lookup) would walk all of them.
MAX_ALIAS_NODES = 10_000


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_aliases(root: yaml.Node, file: str) -> None:
    """Refuse a document whose aliases expand it by more than MAX_ALIAS_NODES nodes, or refer to themselves.

    Counts without expanding: each node's expanded size once, from its children's (a node reached through an
    alias counts again each time), in an explicit stack (no recursion limit)."""
    size: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if key in size:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise ConfigError(
                    f"{file}:{child.start_mark.line + 1}: a YAML alias refers to the value that contains it"
                )
            if id(child) not in size:
                stack.append((child, False))
    added = size[id(root)] - len(size)
    if added > MAX_ALIAS_NODES:
        raise ConfigError(
            f"{file}: YAML aliases (*name) expand the configuration by {added:,} values, more than the "
            f"{MAX_ALIAS_NODES:,} allowed (an alias bomb?); write the values out or use fewer aliases"
        )


def _line_map(root: yaml.Node | None) -> dict[tuple[Any, ...], int]:
    """Map a key path (as pydantic's `loc`) to its 1-based line in the YAML text. Aliases are not followed: a
    value reached through an alias is mapped once, where it is written (a key under it gets its parent's line)."""
    lines: dict[tuple[Any, ...], int] = {}
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(root, ())] if root is not None else []
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = getattr(k, "value", None)
                if not isinstance(key, str):
                    continue
                lines[path + (key,)] = k.start_mark.line + 1  # the last of a repeated key wins, as in YAML
                stack.append((v, path + (key,)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[path + (i,)] = item.start_mark.line + 1
                stack.append((item, path + (i,)))
    return lines


def _format_errors(err: ValidationError, file: str, lines: dict[tuple[Any, ...], int]) -> str:
    msgs = []
    for e in err.errors():
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-after")))
        key = ".".join(str(x) for x in loc) or "(top level)"
        line = None
        for n in range(len(loc), 0, -1):
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
        where = f"{file}:{line}" if line else file
        if e["type"] == "extra_forbidden":
            msg = f"unknown key '{key}'"
        elif e["type"] == "missing":
            msg = f"missing key '{key}'"
        else:
            msg = f"bad value for '{key}': {e['msg']}"
            if "input" in e and not isinstance(e["input"], dict | list):
                msg += f" (got {e['input']!r})"
        msgs.append(f"{where}: {msg}")
    return "invalid configuration:\n  " + "\n  ".join(msgs)


def resolve_config_path(path: str | os.PathLike[str] | None = None) -> Path:
    if path:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(DEFAULT_CONFIG)


def load_config(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate a config file. Raises ConfigError naming the file, key and line."""
    p = resolve_config_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"configuration file not found: {p}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read configuration file {p}: {e}") from e
    return parse_config(text, file=str(p), base_dir=str(p.resolve().parent))


def _yaml_error(e: yaml.YAMLError, file: str) -> ConfigError:
    mark = getattr(e, "problem_mark", None)
    where = f"{file}:{mark.line + 1}" if mark else file
    return ConfigError(f"{where}: not valid YAML: {getattr(e, 'problem', None) or e}")


def parse_config(text: str, file: str = "<string>", base_dir: str = ".") -> Settings:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            _check_aliases(root, file)
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as e:
        raise _yaml_error(e, file) from e
    except RecursionError as e:  # the YAML parser recurses once per level of nesting
        raise ConfigError(f"{file}: the configuration is nested too deeply to read") from e
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the configuration must be a mapping of sections")
    for k in ("base_dir", "file"):
        if k in data:
            raise ConfigError(f"{file}: unknown key '{k}'")
    try:
        settings = Settings.model_validate({**data, "base_dir": base_dir, "file": file})
    except ValidationError as e:
        raise ConfigError(_format_errors(e, file, _line_map(root))) from e
    _check_paths(settings, root)
    return settings


def _check_paths(settings: Settings, root: yaml.Node | None) -> None:
    """The snapshot is replaced wholesale after every pass: it must never be the database, also not through a
    relative path, `..` or a symbolic link."""
    db, snap = settings.db_path.resolve(), settings.snapshot_path.resolve()
    if db == snap:
        lines = _line_map(root)
        line = lines.get(("database", "snapshot")) or lines.get(("database", "path"))
        where = f"{settings.file}:{line}" if line else settings.file
        raise ConfigError(
            f"{where}: bad value for 'database.snapshot': it is the database itself ({db}); the snapshot is a "
            "copy that every pass replaces, so it needs a path of its own (default data/analyst.duckdb)"
        )


def log_effective(settings: Settings) -> None:
    """Log the effective settings once at start, secrets hidden."""
    dump = settings.model_dump(exclude={"sources", "topics", "regions"})
    smtp = dump.get("report", {}).get("smtp")
    if smtp and smtp.get("username"):
        smtp["username"] = "***"
    logger.info("config %s: %s", settings.file, dump)
    logger.info(
        "config %s: %d sources (%d enabled)",
        settings.file,
        len(settings.sources),
        sum(s.enabled for s in settings.sources),
    )
