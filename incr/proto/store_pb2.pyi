from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoreConfig(_message.Message):
    __slots__ = ("format", "version", "store_id", "digest", "page_size", "created")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    format: str
    version: int
    store_id: str
    digest: str
    page_size: int
    created: float
    def __init__(self, format: _Optional[str] = ..., version: _Optional[int] = ..., store_id: _Optional[str] = ..., digest: _Optional[str] = ..., page_size: _Optional[int] = ..., created: _Optional[float] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("kind", "codec", "level", "offset", "length", "raw_length", "digests", "dict")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PAGES: _ClassVar[Frame.Kind]
        BLOB: _ClassVar[Frame.Kind]
    PAGES: Frame.Kind
    BLOB: Frame.Kind
    class Codec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RAW: _ClassVar[Frame.Codec]
        ZSTD: _ClassVar[Frame.Codec]
    RAW: Frame.Codec
    ZSTD: Frame.Codec
    KIND_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    RAW_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    DICT_FIELD_NUMBER: _ClassVar[int]
    kind: Frame.Kind
    codec: Frame.Codec
    level: int
    offset: int
    length: int
    raw_length: int
    digests: bytes
    dict: int
    def __init__(self, kind: _Optional[_Union[Frame.Kind, str]] = ..., codec: _Optional[_Union[Frame.Codec, str]] = ..., level: _Optional[int] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., raw_length: _Optional[int] = ..., digests: _Optional[bytes] = ..., dict: _Optional[int] = ...) -> None: ...

class PackTrailer(_message.Message):
    __slots__ = ("version", "frames", "dicts")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    DICTS_FIELD_NUMBER: _ClassVar[int]
    version: int
    frames: _containers.RepeatedCompositeFieldContainer[Frame]
    dicts: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, version: _Optional[int] = ..., frames: _Optional[_Iterable[_Union[Frame, _Mapping]]] = ..., dicts: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PageMap(_message.Message):
    __slots__ = ("run_first", "run_count", "digests")
    RUN_FIRST_FIELD_NUMBER: _ClassVar[int]
    RUN_COUNT_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    run_first: _containers.RepeatedScalarFieldContainer[int]
    run_count: _containers.RepeatedScalarFieldContainer[int]
    digests: bytes
    def __init__(self, run_first: _Optional[_Iterable[int]] = ..., run_count: _Optional[_Iterable[int]] = ..., digests: _Optional[bytes] = ...) -> None: ...

class PageMapRef(_message.Message):
    __slots__ = ("region", "blob", "pages", "layers", "layer_entries")
    REGION_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    LAYERS_FIELD_NUMBER: _ClassVar[int]
    LAYER_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    region: str
    blob: str
    pages: int
    layers: _containers.RepeatedScalarFieldContainer[str]
    layer_entries: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, region: _Optional[str] = ..., blob: _Optional[str] = ..., pages: _Optional[int] = ..., layers: _Optional[_Iterable[str]] = ..., layer_entries: _Optional[_Iterable[int]] = ...) -> None: ...

class Stats(_message.Message):
    __slots__ = ("pages_total", "pages_dirty", "pages_zero", "pages_new", "bytes_stored", "downtime_ms", "total_ms", "tracker", "rounds")
    PAGES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PAGES_DIRTY_FIELD_NUMBER: _ClassVar[int]
    PAGES_ZERO_FIELD_NUMBER: _ClassVar[int]
    PAGES_NEW_FIELD_NUMBER: _ClassVar[int]
    BYTES_STORED_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    TRACKER_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    pages_total: int
    pages_dirty: int
    pages_zero: int
    pages_new: int
    bytes_stored: int
    downtime_ms: float
    total_ms: float
    tracker: str
    rounds: int
    def __init__(self, pages_total: _Optional[int] = ..., pages_dirty: _Optional[int] = ..., pages_zero: _Optional[int] = ..., pages_new: _Optional[int] = ..., bytes_stored: _Optional[int] = ..., downtime_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., tracker: _Optional[str] = ..., rounds: _Optional[int] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("format_version", "parent", "epoch", "kind", "payload", "page_maps", "stats", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAGE_MAPS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    parent: str
    epoch: float
    kind: str
    payload: bytes
    page_maps: _containers.RepeatedCompositeFieldContainer[PageMapRef]
    stats: Stats
    labels: _containers.ScalarMap[str, str]
    def __init__(self, format_version: _Optional[int] = ..., parent: _Optional[str] = ..., epoch: _Optional[float] = ..., kind: _Optional[str] = ..., payload: _Optional[bytes] = ..., page_maps: _Optional[_Iterable[_Union[PageMapRef, _Mapping]]] = ..., stats: _Optional[_Union[Stats, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...
