from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TreeImage(_message.Message):
    __slots__ = ("version", "arch", "root_pid", "processes", "kernel", "pipes", "socketpairs", "shm", "fifos", "boot_id", "ended_job", "unix_sockets", "socket_paths", "in_flight", "ptys", "inet_sockets", "netlink_sockets")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    ROOT_PID_FIELD_NUMBER: _ClassVar[int]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    PIPES_FIELD_NUMBER: _ClassVar[int]
    SOCKETPAIRS_FIELD_NUMBER: _ClassVar[int]
    SHM_FIELD_NUMBER: _ClassVar[int]
    FIFOS_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    ENDED_JOB_FIELD_NUMBER: _ClassVar[int]
    UNIX_SOCKETS_FIELD_NUMBER: _ClassVar[int]
    SOCKET_PATHS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    PTYS_FIELD_NUMBER: _ClassVar[int]
    INET_SOCKETS_FIELD_NUMBER: _ClassVar[int]
    NETLINK_SOCKETS_FIELD_NUMBER: _ClassVar[int]
    version: int
    arch: str
    root_pid: int
    processes: _containers.RepeatedCompositeFieldContainer[ProcessImage]
    kernel: str
    pipes: _containers.RepeatedCompositeFieldContainer[PipeImage]
    socketpairs: _containers.RepeatedCompositeFieldContainer[SocketPairImage]
    shm: _containers.RepeatedCompositeFieldContainer[ShmImage]
    fifos: _containers.RepeatedCompositeFieldContainer[PipeImage]
    boot_id: str
    ended_job: bool
    unix_sockets: _containers.RepeatedCompositeFieldContainer[UnixSocketImage]
    socket_paths: _containers.RepeatedCompositeFieldContainer[SocketPath]
    in_flight: _containers.RepeatedCompositeFieldContainer[OpenFile]
    ptys: _containers.RepeatedCompositeFieldContainer[PtyImage]
    inet_sockets: _containers.RepeatedCompositeFieldContainer[InetSocketImage]
    netlink_sockets: _containers.RepeatedCompositeFieldContainer[NetlinkSocketImage]
    def __init__(self, version: _Optional[int] = ..., arch: _Optional[str] = ..., root_pid: _Optional[int] = ..., processes: _Optional[_Iterable[_Union[ProcessImage, _Mapping]]] = ..., kernel: _Optional[str] = ..., pipes: _Optional[_Iterable[_Union[PipeImage, _Mapping]]] = ..., socketpairs: _Optional[_Iterable[_Union[SocketPairImage, _Mapping]]] = ..., shm: _Optional[_Iterable[_Union[ShmImage, _Mapping]]] = ..., fifos: _Optional[_Iterable[_Union[PipeImage, _Mapping]]] = ..., boot_id: _Optional[str] = ..., ended_job: _Optional[bool] = ..., unix_sockets: _Optional[_Iterable[_Union[UnixSocketImage, _Mapping]]] = ..., socket_paths: _Optional[_Iterable[_Union[SocketPath, _Mapping]]] = ..., in_flight: _Optional[_Iterable[_Union[OpenFile, _Mapping]]] = ..., ptys: _Optional[_Iterable[_Union[PtyImage, _Mapping]]] = ..., inet_sockets: _Optional[_Iterable[_Union[InetSocketImage, _Mapping]]] = ..., netlink_sockets: _Optional[_Iterable[_Union[NetlinkSocketImage, _Mapping]]] = ...) -> None: ...

class InetSocketImage(_message.Message):
    __slots__ = ("ino", "family", "type", "state", "local_addr", "local_port", "bound", "peer_addr", "peer_port", "flowinfo", "scope_id", "backlog", "options", "tcp", "shutdown", "datagrams", "pending", "outside", "uid", "gid")
    INO_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ADDR_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PORT_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    PEER_ADDR_FIELD_NUMBER: _ClassVar[int]
    PEER_PORT_FIELD_NUMBER: _ClassVar[int]
    FLOWINFO_FIELD_NUMBER: _ClassVar[int]
    SCOPE_ID_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TCP_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    DATAGRAMS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    OUTSIDE_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    ino: int
    family: int
    type: int
    state: int
    local_addr: str
    local_port: int
    bound: bool
    peer_addr: str
    peer_port: int
    flowinfo: int
    scope_id: int
    backlog: int
    options: _containers.RepeatedCompositeFieldContainer[SocketOption]
    tcp: TcpConnection
    shutdown: int
    datagrams: _containers.RepeatedCompositeFieldContainer[Datagram]
    pending: bool
    outside: bool
    uid: int
    gid: int
    def __init__(self, ino: _Optional[int] = ..., family: _Optional[int] = ..., type: _Optional[int] = ..., state: _Optional[int] = ..., local_addr: _Optional[str] = ..., local_port: _Optional[int] = ..., bound: _Optional[bool] = ..., peer_addr: _Optional[str] = ..., peer_port: _Optional[int] = ..., flowinfo: _Optional[int] = ..., scope_id: _Optional[int] = ..., backlog: _Optional[int] = ..., options: _Optional[_Iterable[_Union[SocketOption, _Mapping]]] = ..., tcp: _Optional[_Union[TcpConnection, _Mapping]] = ..., shutdown: _Optional[int] = ..., datagrams: _Optional[_Iterable[_Union[Datagram, _Mapping]]] = ..., pending: _Optional[bool] = ..., outside: _Optional[bool] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ...) -> None: ...

class NetlinkSocketImage(_message.Message):
    __slots__ = ("ino", "type", "protocol", "portid", "groups", "dst_portid", "dst_group", "options", "owner")
    INO_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PORTID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    DST_PORTID_FIELD_NUMBER: _ClassVar[int]
    DST_GROUP_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ino: int
    type: int
    protocol: int
    portid: int
    groups: _containers.RepeatedScalarFieldContainer[int]
    dst_portid: int
    dst_group: int
    options: _containers.RepeatedCompositeFieldContainer[SocketOption]
    owner: Owner
    def __init__(self, ino: _Optional[int] = ..., type: _Optional[int] = ..., protocol: _Optional[int] = ..., portid: _Optional[int] = ..., groups: _Optional[_Iterable[int]] = ..., dst_portid: _Optional[int] = ..., dst_group: _Optional[int] = ..., options: _Optional[_Iterable[_Union[SocketOption, _Mapping]]] = ..., owner: _Optional[_Union[Owner, _Mapping]] = ...) -> None: ...

class Owner(_message.Message):
    __slots__ = ("uid", "gid")
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    uid: int
    gid: int
    def __init__(self, uid: _Optional[int] = ..., gid: _Optional[int] = ...) -> None: ...

class Datagram(_message.Message):
    __slots__ = ("data", "source_addr", "source_port")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ADDR_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PORT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    source_addr: str
    source_port: int
    def __init__(self, data: _Optional[bytes] = ..., source_addr: _Optional[str] = ..., source_port: _Optional[int] = ...) -> None: ...

class TcpConnection(_message.Message):
    __slots__ = ("send_seq", "send_queue", "unsent", "recv_seq", "recv_queue", "mss", "snd_wscale", "rcv_wscale", "wscale", "sack", "timestamps", "timestamp", "window", "window_clamp")
    SEND_SEQ_FIELD_NUMBER: _ClassVar[int]
    SEND_QUEUE_FIELD_NUMBER: _ClassVar[int]
    UNSENT_FIELD_NUMBER: _ClassVar[int]
    RECV_SEQ_FIELD_NUMBER: _ClassVar[int]
    RECV_QUEUE_FIELD_NUMBER: _ClassVar[int]
    MSS_FIELD_NUMBER: _ClassVar[int]
    SND_WSCALE_FIELD_NUMBER: _ClassVar[int]
    RCV_WSCALE_FIELD_NUMBER: _ClassVar[int]
    WSCALE_FIELD_NUMBER: _ClassVar[int]
    SACK_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    WINDOW_CLAMP_FIELD_NUMBER: _ClassVar[int]
    send_seq: int
    send_queue: bytes
    unsent: int
    recv_seq: int
    recv_queue: bytes
    mss: int
    snd_wscale: int
    rcv_wscale: int
    wscale: bool
    sack: bool
    timestamps: bool
    timestamp: int
    window: bytes
    window_clamp: int
    def __init__(self, send_seq: _Optional[int] = ..., send_queue: _Optional[bytes] = ..., unsent: _Optional[int] = ..., recv_seq: _Optional[int] = ..., recv_queue: _Optional[bytes] = ..., mss: _Optional[int] = ..., snd_wscale: _Optional[int] = ..., rcv_wscale: _Optional[int] = ..., wscale: _Optional[bool] = ..., sack: _Optional[bool] = ..., timestamps: _Optional[bool] = ..., timestamp: _Optional[int] = ..., window: _Optional[bytes] = ..., window_clamp: _Optional[int] = ...) -> None: ...

class ShmImage(_message.Message):
    __slots__ = ("key", "kind", "name", "size", "seals", "mode", "shmid", "ipc_key", "destroyed", "unlinked", "alias", "uid", "gid")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ANON: _ClassVar[ShmImage.Kind]
        MEMFD: _ClassVar[ShmImage.Kind]
        DEVSHM: _ClassVar[ShmImage.Kind]
        SYSV: _ClassVar[ShmImage.Kind]
        GHOST: _ClassVar[ShmImage.Kind]
    ANON: ShmImage.Kind
    MEMFD: ShmImage.Kind
    DEVSHM: ShmImage.Kind
    SYSV: ShmImage.Kind
    GHOST: ShmImage.Kind
    KEY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SEALS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SHMID_FIELD_NUMBER: _ClassVar[int]
    IPC_KEY_FIELD_NUMBER: _ClassVar[int]
    DESTROYED_FIELD_NUMBER: _ClassVar[int]
    UNLINKED_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    key: str
    kind: ShmImage.Kind
    name: str
    size: int
    seals: int
    mode: int
    shmid: int
    ipc_key: int
    destroyed: bool
    unlinked: bool
    alias: str
    uid: int
    gid: int
    def __init__(self, key: _Optional[str] = ..., kind: _Optional[_Union[ShmImage.Kind, str]] = ..., name: _Optional[str] = ..., size: _Optional[int] = ..., seals: _Optional[int] = ..., mode: _Optional[int] = ..., shmid: _Optional[int] = ..., ipc_key: _Optional[int] = ..., destroyed: _Optional[bool] = ..., unlinked: _Optional[bool] = ..., alias: _Optional[str] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ...) -> None: ...

class SocketPairImage(_message.Message):
    __slots__ = ("ino_a", "ino_b", "type", "queue_a", "queue_b", "creator", "options_a", "options_b", "shutdown_a", "shutdown_b", "widowed", "ancillary_a", "ancillary_b")
    INO_A_FIELD_NUMBER: _ClassVar[int]
    INO_B_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_A_FIELD_NUMBER: _ClassVar[int]
    QUEUE_B_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_A_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_B_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_A_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_B_FIELD_NUMBER: _ClassVar[int]
    WIDOWED_FIELD_NUMBER: _ClassVar[int]
    ANCILLARY_A_FIELD_NUMBER: _ClassVar[int]
    ANCILLARY_B_FIELD_NUMBER: _ClassVar[int]
    ino_a: int
    ino_b: int
    type: int
    queue_a: _containers.RepeatedScalarFieldContainer[bytes]
    queue_b: _containers.RepeatedScalarFieldContainer[bytes]
    creator: PeerCred
    options_a: _containers.RepeatedCompositeFieldContainer[SocketOption]
    options_b: _containers.RepeatedCompositeFieldContainer[SocketOption]
    shutdown_a: int
    shutdown_b: int
    widowed: bool
    ancillary_a: _containers.RepeatedCompositeFieldContainer[Ancillary]
    ancillary_b: _containers.RepeatedCompositeFieldContainer[Ancillary]
    def __init__(self, ino_a: _Optional[int] = ..., ino_b: _Optional[int] = ..., type: _Optional[int] = ..., queue_a: _Optional[_Iterable[bytes]] = ..., queue_b: _Optional[_Iterable[bytes]] = ..., creator: _Optional[_Union[PeerCred, _Mapping]] = ..., options_a: _Optional[_Iterable[_Union[SocketOption, _Mapping]]] = ..., options_b: _Optional[_Iterable[_Union[SocketOption, _Mapping]]] = ..., shutdown_a: _Optional[int] = ..., shutdown_b: _Optional[int] = ..., widowed: _Optional[bool] = ..., ancillary_a: _Optional[_Iterable[_Union[Ancillary, _Mapping]]] = ..., ancillary_b: _Optional[_Iterable[_Union[Ancillary, _Mapping]]] = ...) -> None: ...

class Ancillary(_message.Message):
    __slots__ = ("message", "files", "cred")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    CRED_FIELD_NUMBER: _ClassVar[int]
    message: int
    files: _containers.RepeatedScalarFieldContainer[int]
    cred: SenderCred
    def __init__(self, message: _Optional[int] = ..., files: _Optional[_Iterable[int]] = ..., cred: _Optional[_Union[SenderCred, _Mapping]] = ...) -> None: ...

class SenderCred(_message.Message):
    __slots__ = ("pid", "uid", "gid")
    PID_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    pid: int
    uid: int
    gid: int
    def __init__(self, pid: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ...) -> None: ...

class SocketOption(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: bytes
    def __init__(self, name: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class UnixSocketImage(_message.Message):
    __slots__ = ("ino", "type", "name", "state", "peer", "accepted", "backlog", "pending", "listener", "queue", "options", "shutdown", "peer_cred", "owns_file", "file_mode", "file_uid", "file_gid", "peer_name", "widowed", "ancillary", "owner")
    INO_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    LISTENER_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    PEER_CRED_FIELD_NUMBER: _ClassVar[int]
    OWNS_FILE_FIELD_NUMBER: _ClassVar[int]
    FILE_MODE_FIELD_NUMBER: _ClassVar[int]
    FILE_UID_FIELD_NUMBER: _ClassVar[int]
    FILE_GID_FIELD_NUMBER: _ClassVar[int]
    PEER_NAME_FIELD_NUMBER: _ClassVar[int]
    WIDOWED_FIELD_NUMBER: _ClassVar[int]
    ANCILLARY_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ino: int
    type: int
    name: bytes
    state: int
    peer: int
    accepted: bool
    backlog: int
    pending: _containers.RepeatedScalarFieldContainer[int]
    listener: int
    queue: _containers.RepeatedCompositeFieldContainer[UnixMessage]
    options: _containers.RepeatedCompositeFieldContainer[SocketOption]
    shutdown: int
    peer_cred: PeerCred
    owns_file: bool
    file_mode: int
    file_uid: int
    file_gid: int
    peer_name: bytes
    widowed: bool
    ancillary: _containers.RepeatedCompositeFieldContainer[Ancillary]
    owner: Owner
    def __init__(self, ino: _Optional[int] = ..., type: _Optional[int] = ..., name: _Optional[bytes] = ..., state: _Optional[int] = ..., peer: _Optional[int] = ..., accepted: _Optional[bool] = ..., backlog: _Optional[int] = ..., pending: _Optional[_Iterable[int]] = ..., listener: _Optional[int] = ..., queue: _Optional[_Iterable[_Union[UnixMessage, _Mapping]]] = ..., options: _Optional[_Iterable[_Union[SocketOption, _Mapping]]] = ..., shutdown: _Optional[int] = ..., peer_cred: _Optional[_Union[PeerCred, _Mapping]] = ..., owns_file: _Optional[bool] = ..., file_mode: _Optional[int] = ..., file_uid: _Optional[int] = ..., file_gid: _Optional[int] = ..., peer_name: _Optional[bytes] = ..., widowed: _Optional[bool] = ..., ancillary: _Optional[_Iterable[_Union[Ancillary, _Mapping]]] = ..., owner: _Optional[_Union[Owner, _Mapping]] = ...) -> None: ...

class UnixMessage(_message.Message):
    __slots__ = ("data", "sender")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    sender: bytes
    def __init__(self, data: _Optional[bytes] = ..., sender: _Optional[bytes] = ...) -> None: ...

class SocketPath(_message.Message):
    __slots__ = ("name", "mode", "uid", "gid")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    mode: int
    uid: int
    gid: int
    def __init__(self, name: _Optional[bytes] = ..., mode: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ...) -> None: ...

class PeerCred(_message.Message):
    __slots__ = ("pid", "uid", "gid", "groups")
    PID_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    pid: int
    uid: int
    gid: int
    groups: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, pid: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., groups: _Optional[_Iterable[int]] = ...) -> None: ...

class PipeImage(_message.Message):
    __slots__ = ("ino", "data", "capacity", "dev", "widowed", "packets")
    INO_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    DEV_FIELD_NUMBER: _ClassVar[int]
    WIDOWED_FIELD_NUMBER: _ClassVar[int]
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    ino: int
    data: bytes
    capacity: int
    dev: int
    widowed: bool
    packets: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ino: _Optional[int] = ..., data: _Optional[bytes] = ..., capacity: _Optional[int] = ..., dev: _Optional[int] = ..., widowed: _Optional[bool] = ..., packets: _Optional[_Iterable[int]] = ...) -> None: ...

class ProcessImage(_message.Message):
    __slots__ = ("pid", "ppid", "pgid", "sid", "comm", "cmdline", "stopped", "threads", "mm", "vmas", "files", "fds", "fs", "rlimits", "sigactions", "shared_pending", "creds", "itimers", "personality", "oom_score_adj", "zombie", "exit_status", "posix_timers", "thp_disable", "merge_any", "lock_future", "files_of", "fs_of", "start_time", "tty_nr", "locks", "mdwe", "stop_signal", "child_subreaper", "dumpable", "membarrier_registrations", "stop_reported", "uts", "seccomp")
    PID_FIELD_NUMBER: _ClassVar[int]
    PPID_FIELD_NUMBER: _ClassVar[int]
    PGID_FIELD_NUMBER: _ClassVar[int]
    SID_FIELD_NUMBER: _ClassVar[int]
    COMM_FIELD_NUMBER: _ClassVar[int]
    CMDLINE_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    MM_FIELD_NUMBER: _ClassVar[int]
    VMAS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    FDS_FIELD_NUMBER: _ClassVar[int]
    FS_FIELD_NUMBER: _ClassVar[int]
    RLIMITS_FIELD_NUMBER: _ClassVar[int]
    SIGACTIONS_FIELD_NUMBER: _ClassVar[int]
    SHARED_PENDING_FIELD_NUMBER: _ClassVar[int]
    CREDS_FIELD_NUMBER: _ClassVar[int]
    ITIMERS_FIELD_NUMBER: _ClassVar[int]
    PERSONALITY_FIELD_NUMBER: _ClassVar[int]
    OOM_SCORE_ADJ_FIELD_NUMBER: _ClassVar[int]
    ZOMBIE_FIELD_NUMBER: _ClassVar[int]
    EXIT_STATUS_FIELD_NUMBER: _ClassVar[int]
    POSIX_TIMERS_FIELD_NUMBER: _ClassVar[int]
    THP_DISABLE_FIELD_NUMBER: _ClassVar[int]
    MERGE_ANY_FIELD_NUMBER: _ClassVar[int]
    LOCK_FUTURE_FIELD_NUMBER: _ClassVar[int]
    FILES_OF_FIELD_NUMBER: _ClassVar[int]
    FS_OF_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    TTY_NR_FIELD_NUMBER: _ClassVar[int]
    LOCKS_FIELD_NUMBER: _ClassVar[int]
    MDWE_FIELD_NUMBER: _ClassVar[int]
    STOP_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    CHILD_SUBREAPER_FIELD_NUMBER: _ClassVar[int]
    DUMPABLE_FIELD_NUMBER: _ClassVar[int]
    MEMBARRIER_REGISTRATIONS_FIELD_NUMBER: _ClassVar[int]
    STOP_REPORTED_FIELD_NUMBER: _ClassVar[int]
    UTS_FIELD_NUMBER: _ClassVar[int]
    SECCOMP_FIELD_NUMBER: _ClassVar[int]
    pid: int
    ppid: int
    pgid: int
    sid: int
    comm: str
    cmdline: _containers.RepeatedScalarFieldContainer[str]
    stopped: bool
    threads: _containers.RepeatedCompositeFieldContainer[ThreadImage]
    mm: MmImage
    vmas: _containers.RepeatedCompositeFieldContainer[Vma]
    files: _containers.RepeatedCompositeFieldContainer[OpenFile]
    fds: _containers.RepeatedCompositeFieldContainer[Fd]
    fs: FsImage
    rlimits: _containers.RepeatedCompositeFieldContainer[Rlimit]
    sigactions: _containers.RepeatedCompositeFieldContainer[SigAction]
    shared_pending: _containers.RepeatedScalarFieldContainer[bytes]
    creds: Creds
    itimers: _containers.RepeatedCompositeFieldContainer[ITimer]
    personality: int
    oom_score_adj: int
    zombie: bool
    exit_status: int
    posix_timers: _containers.RepeatedCompositeFieldContainer[PosixTimer]
    thp_disable: int
    merge_any: bool
    lock_future: int
    files_of: int
    fs_of: int
    start_time: int
    tty_nr: int
    locks: _containers.RepeatedCompositeFieldContainer[FileLock]
    mdwe: int
    stop_signal: int
    child_subreaper: bool
    dumpable: int
    membarrier_registrations: int
    stop_reported: bool
    uts: UtsNamespace
    seccomp: _containers.RepeatedCompositeFieldContainer[SeccompFilter]
    def __init__(self, pid: _Optional[int] = ..., ppid: _Optional[int] = ..., pgid: _Optional[int] = ..., sid: _Optional[int] = ..., comm: _Optional[str] = ..., cmdline: _Optional[_Iterable[str]] = ..., stopped: _Optional[bool] = ..., threads: _Optional[_Iterable[_Union[ThreadImage, _Mapping]]] = ..., mm: _Optional[_Union[MmImage, _Mapping]] = ..., vmas: _Optional[_Iterable[_Union[Vma, _Mapping]]] = ..., files: _Optional[_Iterable[_Union[OpenFile, _Mapping]]] = ..., fds: _Optional[_Iterable[_Union[Fd, _Mapping]]] = ..., fs: _Optional[_Union[FsImage, _Mapping]] = ..., rlimits: _Optional[_Iterable[_Union[Rlimit, _Mapping]]] = ..., sigactions: _Optional[_Iterable[_Union[SigAction, _Mapping]]] = ..., shared_pending: _Optional[_Iterable[bytes]] = ..., creds: _Optional[_Union[Creds, _Mapping]] = ..., itimers: _Optional[_Iterable[_Union[ITimer, _Mapping]]] = ..., personality: _Optional[int] = ..., oom_score_adj: _Optional[int] = ..., zombie: _Optional[bool] = ..., exit_status: _Optional[int] = ..., posix_timers: _Optional[_Iterable[_Union[PosixTimer, _Mapping]]] = ..., thp_disable: _Optional[int] = ..., merge_any: _Optional[bool] = ..., lock_future: _Optional[int] = ..., files_of: _Optional[int] = ..., fs_of: _Optional[int] = ..., start_time: _Optional[int] = ..., tty_nr: _Optional[int] = ..., locks: _Optional[_Iterable[_Union[FileLock, _Mapping]]] = ..., mdwe: _Optional[int] = ..., stop_signal: _Optional[int] = ..., child_subreaper: _Optional[bool] = ..., dumpable: _Optional[int] = ..., membarrier_registrations: _Optional[int] = ..., stop_reported: _Optional[bool] = ..., uts: _Optional[_Union[UtsNamespace, _Mapping]] = ..., seccomp: _Optional[_Iterable[_Union[SeccompFilter, _Mapping]]] = ...) -> None: ...

class SeccompFilter(_message.Message):
    __slots__ = ("program", "flags")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    program: bytes
    flags: int
    def __init__(self, program: _Optional[bytes] = ..., flags: _Optional[int] = ...) -> None: ...

class UtsNamespace(_message.Message):
    __slots__ = ("id", "hostname", "domainname")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    DOMAINNAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    hostname: bytes
    domainname: bytes
    def __init__(self, id: _Optional[int] = ..., hostname: _Optional[bytes] = ..., domainname: _Optional[bytes] = ...) -> None: ...

class FileLock(_message.Message):
    __slots__ = ("kind", "fd", "write", "start", "length", "taker")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FLOCK: _ClassVar[FileLock.Kind]
        POSIX: _ClassVar[FileLock.Kind]
        OFD: _ClassVar[FileLock.Kind]
        LEASE: _ClassVar[FileLock.Kind]
    FLOCK: FileLock.Kind
    POSIX: FileLock.Kind
    OFD: FileLock.Kind
    LEASE: FileLock.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    FD_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    TAKER_FIELD_NUMBER: _ClassVar[int]
    kind: FileLock.Kind
    fd: int
    write: bool
    start: int
    length: int
    taker: int
    def __init__(self, kind: _Optional[_Union[FileLock.Kind, str]] = ..., fd: _Optional[int] = ..., write: _Optional[bool] = ..., start: _Optional[int] = ..., length: _Optional[int] = ..., taker: _Optional[int] = ...) -> None: ...

class Rseq(_message.Message):
    __slots__ = ("pointer", "size", "signature")
    POINTER_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    pointer: int
    size: int
    signature: int
    def __init__(self, pointer: _Optional[int] = ..., size: _Optional[int] = ..., signature: _Optional[int] = ...) -> None: ...

class SigAltStack(_message.Message):
    __slots__ = ("sp", "flags", "size")
    SP_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    sp: int
    flags: int
    size: int
    def __init__(self, sp: _Optional[int] = ..., flags: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class ThreadImage(_message.Message):
    __slots__ = ("tid", "regs", "xstate", "sigmask", "rseq", "robust_list", "robust_list_len", "clear_child_tid", "altstack", "pending", "comm", "nice", "cpu_affinity", "creds", "sched", "tsc", "pdeath_signal", "mce_kill", "spec_store_bypass", "spec_indirect_branch")
    TID_FIELD_NUMBER: _ClassVar[int]
    REGS_FIELD_NUMBER: _ClassVar[int]
    XSTATE_FIELD_NUMBER: _ClassVar[int]
    SIGMASK_FIELD_NUMBER: _ClassVar[int]
    RSEQ_FIELD_NUMBER: _ClassVar[int]
    ROBUST_LIST_FIELD_NUMBER: _ClassVar[int]
    ROBUST_LIST_LEN_FIELD_NUMBER: _ClassVar[int]
    CLEAR_CHILD_TID_FIELD_NUMBER: _ClassVar[int]
    ALTSTACK_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    COMM_FIELD_NUMBER: _ClassVar[int]
    NICE_FIELD_NUMBER: _ClassVar[int]
    CPU_AFFINITY_FIELD_NUMBER: _ClassVar[int]
    CREDS_FIELD_NUMBER: _ClassVar[int]
    SCHED_FIELD_NUMBER: _ClassVar[int]
    TSC_FIELD_NUMBER: _ClassVar[int]
    PDEATH_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    MCE_KILL_FIELD_NUMBER: _ClassVar[int]
    SPEC_STORE_BYPASS_FIELD_NUMBER: _ClassVar[int]
    SPEC_INDIRECT_BRANCH_FIELD_NUMBER: _ClassVar[int]
    tid: int
    regs: bytes
    xstate: bytes
    sigmask: int
    rseq: Rseq
    robust_list: int
    robust_list_len: int
    clear_child_tid: int
    altstack: SigAltStack
    pending: _containers.RepeatedScalarFieldContainer[bytes]
    comm: str
    nice: int
    cpu_affinity: _containers.RepeatedScalarFieldContainer[int]
    creds: Creds
    sched: Sched
    tsc: int
    pdeath_signal: int
    mce_kill: int
    spec_store_bypass: int
    spec_indirect_branch: int
    def __init__(self, tid: _Optional[int] = ..., regs: _Optional[bytes] = ..., xstate: _Optional[bytes] = ..., sigmask: _Optional[int] = ..., rseq: _Optional[_Union[Rseq, _Mapping]] = ..., robust_list: _Optional[int] = ..., robust_list_len: _Optional[int] = ..., clear_child_tid: _Optional[int] = ..., altstack: _Optional[_Union[SigAltStack, _Mapping]] = ..., pending: _Optional[_Iterable[bytes]] = ..., comm: _Optional[str] = ..., nice: _Optional[int] = ..., cpu_affinity: _Optional[_Iterable[int]] = ..., creds: _Optional[_Union[Creds, _Mapping]] = ..., sched: _Optional[_Union[Sched, _Mapping]] = ..., tsc: _Optional[int] = ..., pdeath_signal: _Optional[int] = ..., mce_kill: _Optional[int] = ..., spec_store_bypass: _Optional[int] = ..., spec_indirect_branch: _Optional[int] = ...) -> None: ...

class Sched(_message.Message):
    __slots__ = ("policy", "flags", "priority", "runtime", "deadline", "period", "ioprio", "timerslack_ns")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    IOPRIO_FIELD_NUMBER: _ClassVar[int]
    TIMERSLACK_NS_FIELD_NUMBER: _ClassVar[int]
    policy: int
    flags: int
    priority: int
    runtime: int
    deadline: int
    period: int
    ioprio: int
    timerslack_ns: int
    def __init__(self, policy: _Optional[int] = ..., flags: _Optional[int] = ..., priority: _Optional[int] = ..., runtime: _Optional[int] = ..., deadline: _Optional[int] = ..., period: _Optional[int] = ..., ioprio: _Optional[int] = ..., timerslack_ns: _Optional[int] = ...) -> None: ...

class MmImage(_message.Message):
    __slots__ = ("start_code", "end_code", "start_data", "end_data", "start_brk", "brk", "start_stack", "arg_start", "arg_end", "env_start", "env_end", "auxv", "exe", "exe_id", "exe_shm")
    START_CODE_FIELD_NUMBER: _ClassVar[int]
    END_CODE_FIELD_NUMBER: _ClassVar[int]
    START_DATA_FIELD_NUMBER: _ClassVar[int]
    END_DATA_FIELD_NUMBER: _ClassVar[int]
    START_BRK_FIELD_NUMBER: _ClassVar[int]
    BRK_FIELD_NUMBER: _ClassVar[int]
    START_STACK_FIELD_NUMBER: _ClassVar[int]
    ARG_START_FIELD_NUMBER: _ClassVar[int]
    ARG_END_FIELD_NUMBER: _ClassVar[int]
    ENV_START_FIELD_NUMBER: _ClassVar[int]
    ENV_END_FIELD_NUMBER: _ClassVar[int]
    AUXV_FIELD_NUMBER: _ClassVar[int]
    EXE_FIELD_NUMBER: _ClassVar[int]
    EXE_ID_FIELD_NUMBER: _ClassVar[int]
    EXE_SHM_FIELD_NUMBER: _ClassVar[int]
    start_code: int
    end_code: int
    start_data: int
    end_data: int
    start_brk: int
    brk: int
    start_stack: int
    arg_start: int
    arg_end: int
    env_start: int
    env_end: int
    auxv: bytes
    exe: str
    exe_id: FileId
    exe_shm: str
    def __init__(self, start_code: _Optional[int] = ..., end_code: _Optional[int] = ..., start_data: _Optional[int] = ..., end_data: _Optional[int] = ..., start_brk: _Optional[int] = ..., brk: _Optional[int] = ..., start_stack: _Optional[int] = ..., arg_start: _Optional[int] = ..., arg_end: _Optional[int] = ..., env_start: _Optional[int] = ..., env_end: _Optional[int] = ..., auxv: _Optional[bytes] = ..., exe: _Optional[str] = ..., exe_id: _Optional[_Union[FileId, _Mapping]] = ..., exe_shm: _Optional[str] = ...) -> None: ...

class FileId(_message.Message):
    __slots__ = ("dev", "ino", "size", "mtime_ns", "mode", "ctime_ns")
    DEV_FIELD_NUMBER: _ClassVar[int]
    INO_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CTIME_NS_FIELD_NUMBER: _ClassVar[int]
    dev: int
    ino: int
    size: int
    mtime_ns: int
    mode: int
    ctime_ns: int
    def __init__(self, dev: _Optional[int] = ..., ino: _Optional[int] = ..., size: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., mode: _Optional[int] = ..., ctime_ns: _Optional[int] = ...) -> None: ...

class Vma(_message.Message):
    __slots__ = ("start", "end", "prot", "kind", "name", "pgoff", "file", "growsdown", "shm", "advice", "lock", "noreserve", "unaccounted", "sealed", "guards", "guarded", "may_write", "aio_nr", "aio_head", "aio_tail", "aio_events")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ANON: _ClassVar[Vma.Kind]
        FILE_PRIVATE: _ClassVar[Vma.Kind]
        FILE_SHARED: _ClassVar[Vma.Kind]
        VDSO: _ClassVar[Vma.Kind]
        VVAR: _ClassVar[Vma.Kind]
        VVAR_VCLOCK: _ClassVar[Vma.Kind]
        SHMEM: _ClassVar[Vma.Kind]
        DROPPABLE: _ClassVar[Vma.Kind]
        AIO: _ClassVar[Vma.Kind]
    ANON: Vma.Kind
    FILE_PRIVATE: Vma.Kind
    FILE_SHARED: Vma.Kind
    VDSO: Vma.Kind
    VVAR: Vma.Kind
    VVAR_VCLOCK: Vma.Kind
    SHMEM: Vma.Kind
    DROPPABLE: Vma.Kind
    AIO: Vma.Kind
    class Advice(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NO_ADVICE: _ClassVar[Vma.Advice]
        DONTFORK: _ClassVar[Vma.Advice]
        WIPEONFORK: _ClassVar[Vma.Advice]
        HUGEPAGE: _ClassVar[Vma.Advice]
        NOHUGEPAGE: _ClassVar[Vma.Advice]
        DONTDUMP: _ClassVar[Vma.Advice]
        MERGEABLE: _ClassVar[Vma.Advice]
        SEQUENTIAL: _ClassVar[Vma.Advice]
        RANDOM: _ClassVar[Vma.Advice]
    NO_ADVICE: Vma.Advice
    DONTFORK: Vma.Advice
    WIPEONFORK: Vma.Advice
    HUGEPAGE: Vma.Advice
    NOHUGEPAGE: Vma.Advice
    DONTDUMP: Vma.Advice
    MERGEABLE: Vma.Advice
    SEQUENTIAL: Vma.Advice
    RANDOM: Vma.Advice
    class Lock(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNLOCKED: _ClassVar[Vma.Lock]
        LOCKED: _ClassVar[Vma.Lock]
        LOCKED_ON_FAULT: _ClassVar[Vma.Lock]
    UNLOCKED: Vma.Lock
    LOCKED: Vma.Lock
    LOCKED_ON_FAULT: Vma.Lock
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PROT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PGOFF_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    GROWSDOWN_FIELD_NUMBER: _ClassVar[int]
    SHM_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    LOCK_FIELD_NUMBER: _ClassVar[int]
    NORESERVE_FIELD_NUMBER: _ClassVar[int]
    UNACCOUNTED_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    GUARDS_FIELD_NUMBER: _ClassVar[int]
    GUARDED_FIELD_NUMBER: _ClassVar[int]
    MAY_WRITE_FIELD_NUMBER: _ClassVar[int]
    AIO_NR_FIELD_NUMBER: _ClassVar[int]
    AIO_HEAD_FIELD_NUMBER: _ClassVar[int]
    AIO_TAIL_FIELD_NUMBER: _ClassVar[int]
    AIO_EVENTS_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    prot: int
    kind: Vma.Kind
    name: str
    pgoff: int
    file: FileId
    growsdown: bool
    shm: str
    advice: int
    lock: Vma.Lock
    noreserve: bool
    unaccounted: bool
    sealed: bool
    guards: _containers.RepeatedCompositeFieldContainer[PageSpan]
    guarded: bool
    may_write: bool
    aio_nr: int
    aio_head: int
    aio_tail: int
    aio_events: bytes
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., prot: _Optional[int] = ..., kind: _Optional[_Union[Vma.Kind, str]] = ..., name: _Optional[str] = ..., pgoff: _Optional[int] = ..., file: _Optional[_Union[FileId, _Mapping]] = ..., growsdown: _Optional[bool] = ..., shm: _Optional[str] = ..., advice: _Optional[int] = ..., lock: _Optional[_Union[Vma.Lock, str]] = ..., noreserve: _Optional[bool] = ..., unaccounted: _Optional[bool] = ..., sealed: _Optional[bool] = ..., guards: _Optional[_Iterable[_Union[PageSpan, _Mapping]]] = ..., guarded: _Optional[bool] = ..., may_write: _Optional[bool] = ..., aio_nr: _Optional[int] = ..., aio_head: _Optional[int] = ..., aio_tail: _Optional[int] = ..., aio_events: _Optional[bytes] = ...) -> None: ...

class PageSpan(_message.Message):
    __slots__ = ("first", "count")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    first: int
    count: int
    def __init__(self, first: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class OpenFile(_message.Message):
    __slots__ = ("id", "kind", "path", "flags", "pos", "file", "what", "pipe", "eventfd", "signalfd", "timerfd", "epoll", "inotify", "socket", "shm", "owner", "signal", "pidfd", "fanotify", "shared_outside", "other_writers", "removed", "pty")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REGULAR: _ClassVar[OpenFile.Kind]
        DIRECTORY: _ClassVar[OpenFile.Kind]
        CHAR_DEVICE: _ClassVar[OpenFile.Kind]
        INHERIT_STDIO: _ClassVar[OpenFile.Kind]
        PIPE: _ClassVar[OpenFile.Kind]
        EVENTFD: _ClassVar[OpenFile.Kind]
        SIGNALFD: _ClassVar[OpenFile.Kind]
        TIMERFD: _ClassVar[OpenFile.Kind]
        EPOLL: _ClassVar[OpenFile.Kind]
        INOTIFY: _ClassVar[OpenFile.Kind]
        SOCKETPAIR: _ClassVar[OpenFile.Kind]
        SHMEM: _ClassVar[OpenFile.Kind]
        FIFO: _ClassVar[OpenFile.Kind]
        SYMLINK: _ClassVar[OpenFile.Kind]
        PROCFS: _ClassVar[OpenFile.Kind]
        PIDFD: _ClassVar[OpenFile.Kind]
        UNIX: _ClassVar[OpenFile.Kind]
        PTY_MASTER: _ClassVar[OpenFile.Kind]
        PTY_SLAVE: _ClassVar[OpenFile.Kind]
        TTY: _ClassVar[OpenFile.Kind]
        INET: _ClassVar[OpenFile.Kind]
        NETLINK: _ClassVar[OpenFile.Kind]
        FANOTIFY: _ClassVar[OpenFile.Kind]
        EXTERNAL: _ClassVar[OpenFile.Kind]
    REGULAR: OpenFile.Kind
    DIRECTORY: OpenFile.Kind
    CHAR_DEVICE: OpenFile.Kind
    INHERIT_STDIO: OpenFile.Kind
    PIPE: OpenFile.Kind
    EVENTFD: OpenFile.Kind
    SIGNALFD: OpenFile.Kind
    TIMERFD: OpenFile.Kind
    EPOLL: OpenFile.Kind
    INOTIFY: OpenFile.Kind
    SOCKETPAIR: OpenFile.Kind
    SHMEM: OpenFile.Kind
    FIFO: OpenFile.Kind
    SYMLINK: OpenFile.Kind
    PROCFS: OpenFile.Kind
    PIDFD: OpenFile.Kind
    UNIX: OpenFile.Kind
    PTY_MASTER: OpenFile.Kind
    PTY_SLAVE: OpenFile.Kind
    TTY: OpenFile.Kind
    INET: OpenFile.Kind
    NETLINK: OpenFile.Kind
    FANOTIFY: OpenFile.Kind
    EXTERNAL: OpenFile.Kind
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    POS_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    WHAT_FIELD_NUMBER: _ClassVar[int]
    PIPE_FIELD_NUMBER: _ClassVar[int]
    EVENTFD_FIELD_NUMBER: _ClassVar[int]
    SIGNALFD_FIELD_NUMBER: _ClassVar[int]
    TIMERFD_FIELD_NUMBER: _ClassVar[int]
    EPOLL_FIELD_NUMBER: _ClassVar[int]
    INOTIFY_FIELD_NUMBER: _ClassVar[int]
    SOCKET_FIELD_NUMBER: _ClassVar[int]
    SHM_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    PIDFD_FIELD_NUMBER: _ClassVar[int]
    FANOTIFY_FIELD_NUMBER: _ClassVar[int]
    SHARED_OUTSIDE_FIELD_NUMBER: _ClassVar[int]
    OTHER_WRITERS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    PTY_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: OpenFile.Kind
    path: str
    flags: int
    pos: int
    file: FileId
    what: str
    pipe: int
    eventfd: EventfdState
    signalfd: SignalfdState
    timerfd: TimerfdState
    epoll: EpollState
    inotify: InotifyState
    socket: int
    shm: str
    owner: FileOwner
    signal: int
    pidfd: PidfdState
    fanotify: FanotifyState
    shared_outside: bool
    other_writers: _containers.RepeatedScalarFieldContainer[str]
    removed: GhostNode
    pty: int
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[_Union[OpenFile.Kind, str]] = ..., path: _Optional[str] = ..., flags: _Optional[int] = ..., pos: _Optional[int] = ..., file: _Optional[_Union[FileId, _Mapping]] = ..., what: _Optional[str] = ..., pipe: _Optional[int] = ..., eventfd: _Optional[_Union[EventfdState, _Mapping]] = ..., signalfd: _Optional[_Union[SignalfdState, _Mapping]] = ..., timerfd: _Optional[_Union[TimerfdState, _Mapping]] = ..., epoll: _Optional[_Union[EpollState, _Mapping]] = ..., inotify: _Optional[_Union[InotifyState, _Mapping]] = ..., socket: _Optional[int] = ..., shm: _Optional[str] = ..., owner: _Optional[_Union[FileOwner, _Mapping]] = ..., signal: _Optional[int] = ..., pidfd: _Optional[_Union[PidfdState, _Mapping]] = ..., fanotify: _Optional[_Union[FanotifyState, _Mapping]] = ..., shared_outside: _Optional[bool] = ..., other_writers: _Optional[_Iterable[str]] = ..., removed: _Optional[_Union[GhostNode, _Mapping]] = ..., pty: _Optional[int] = ...) -> None: ...

class PtyImage(_message.Message):
    __slots__ = ("index", "termios", "winsize", "locked", "packet", "session", "foreground", "typed", "partial", "output", "slave_closed", "flow", "status")
    class Flow(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RUNNING: _ClassVar[PtyImage.Flow]
        XOFF: _ClassVar[PtyImage.Flow]
        TCOOFF: _ClassVar[PtyImage.Flow]
    RUNNING: PtyImage.Flow
    XOFF: PtyImage.Flow
    TCOOFF: PtyImage.Flow
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TERMIOS_FIELD_NUMBER: _ClassVar[int]
    WINSIZE_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    PACKET_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    FOREGROUND_FIELD_NUMBER: _ClassVar[int]
    TYPED_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    SLAVE_CLOSED_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    index: int
    termios: bytes
    winsize: bytes
    locked: bool
    packet: bool
    session: int
    foreground: int
    typed: _containers.RepeatedScalarFieldContainer[bytes]
    partial: bytes
    output: bytes
    slave_closed: bool
    flow: PtyImage.Flow
    status: int
    def __init__(self, index: _Optional[int] = ..., termios: _Optional[bytes] = ..., winsize: _Optional[bytes] = ..., locked: _Optional[bool] = ..., packet: _Optional[bool] = ..., session: _Optional[int] = ..., foreground: _Optional[int] = ..., typed: _Optional[_Iterable[bytes]] = ..., partial: _Optional[bytes] = ..., output: _Optional[bytes] = ..., slave_closed: _Optional[bool] = ..., flow: _Optional[_Union[PtyImage.Flow, str]] = ..., status: _Optional[int] = ...) -> None: ...

class FileOwner(_message.Message):
    __slots__ = ("type", "pid")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    type: int
    pid: int
    def __init__(self, type: _Optional[int] = ..., pid: _Optional[int] = ...) -> None: ...

class PidfdState(_message.Message):
    __slots__ = ("pid", "reaped")
    PID_FIELD_NUMBER: _ClassVar[int]
    REAPED_FIELD_NUMBER: _ClassVar[int]
    pid: int
    reaped: bool
    def __init__(self, pid: _Optional[int] = ..., reaped: _Optional[bool] = ...) -> None: ...

class EventfdState(_message.Message):
    __slots__ = ("count", "semaphore")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEMAPHORE_FIELD_NUMBER: _ClassVar[int]
    count: int
    semaphore: bool
    def __init__(self, count: _Optional[int] = ..., semaphore: _Optional[bool] = ...) -> None: ...

class SignalfdState(_message.Message):
    __slots__ = ("mask",)
    MASK_FIELD_NUMBER: _ClassVar[int]
    mask: int
    def __init__(self, mask: _Optional[int] = ...) -> None: ...

class TimerfdState(_message.Message):
    __slots__ = ("clockid", "ticks", "settime_flags", "value_ns", "interval_ns")
    CLOCKID_FIELD_NUMBER: _ClassVar[int]
    TICKS_FIELD_NUMBER: _ClassVar[int]
    SETTIME_FLAGS_FIELD_NUMBER: _ClassVar[int]
    VALUE_NS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_NS_FIELD_NUMBER: _ClassVar[int]
    clockid: int
    ticks: int
    settime_flags: int
    value_ns: int
    interval_ns: int
    def __init__(self, clockid: _Optional[int] = ..., ticks: _Optional[int] = ..., settime_flags: _Optional[int] = ..., value_ns: _Optional[int] = ..., interval_ns: _Optional[int] = ...) -> None: ...

class EpollWatch(_message.Message):
    __slots__ = ("fd", "events", "data", "via")
    FD_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    VIA_FIELD_NUMBER: _ClassVar[int]
    fd: int
    events: int
    data: int
    via: int
    def __init__(self, fd: _Optional[int] = ..., events: _Optional[int] = ..., data: _Optional[int] = ..., via: _Optional[int] = ...) -> None: ...

class EpollState(_message.Message):
    __slots__ = ("watches",)
    WATCHES_FIELD_NUMBER: _ClassVar[int]
    watches: _containers.RepeatedCompositeFieldContainer[EpollWatch]
    def __init__(self, watches: _Optional[_Iterable[_Union[EpollWatch, _Mapping]]] = ...) -> None: ...

class InotifyWatch(_message.Message):
    __slots__ = ("wd", "mask", "path")
    WD_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    wd: int
    mask: int
    path: str
    def __init__(self, wd: _Optional[int] = ..., mask: _Optional[int] = ..., path: _Optional[str] = ...) -> None: ...

class InotifyState(_message.Message):
    __slots__ = ("watches",)
    WATCHES_FIELD_NUMBER: _ClassVar[int]
    watches: _containers.RepeatedCompositeFieldContainer[InotifyWatch]
    def __init__(self, watches: _Optional[_Iterable[_Union[InotifyWatch, _Mapping]]] = ...) -> None: ...

class FanotifyState(_message.Message):
    __slots__ = ("flags", "event_flags", "marks")
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FLAGS_FIELD_NUMBER: _ClassVar[int]
    MARKS_FIELD_NUMBER: _ClassVar[int]
    flags: int
    event_flags: int
    marks: _containers.RepeatedCompositeFieldContainer[FanotifyMark]
    def __init__(self, flags: _Optional[int] = ..., event_flags: _Optional[int] = ..., marks: _Optional[_Iterable[_Union[FanotifyMark, _Mapping]]] = ...) -> None: ...

class FanotifyMark(_message.Message):
    __slots__ = ("path", "mflags", "mask", "ignored_mask")
    PATH_FIELD_NUMBER: _ClassVar[int]
    MFLAGS_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    IGNORED_MASK_FIELD_NUMBER: _ClassVar[int]
    path: str
    mflags: int
    mask: int
    ignored_mask: int
    def __init__(self, path: _Optional[str] = ..., mflags: _Optional[int] = ..., mask: _Optional[int] = ..., ignored_mask: _Optional[int] = ...) -> None: ...

class Fd(_message.Message):
    __slots__ = ("fd", "file", "cloexec")
    FD_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    CLOEXEC_FIELD_NUMBER: _ClassVar[int]
    fd: int
    file: int
    cloexec: bool
    def __init__(self, fd: _Optional[int] = ..., file: _Optional[int] = ..., cloexec: _Optional[bool] = ...) -> None: ...

class FsImage(_message.Message):
    __slots__ = ("cwd", "root", "umask", "cwd_removed")
    CWD_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    UMASK_FIELD_NUMBER: _ClassVar[int]
    CWD_REMOVED_FIELD_NUMBER: _ClassVar[int]
    cwd: str
    root: str
    umask: int
    cwd_removed: GhostNode
    def __init__(self, cwd: _Optional[str] = ..., root: _Optional[str] = ..., umask: _Optional[int] = ..., cwd_removed: _Optional[_Union[GhostNode, _Mapping]] = ...) -> None: ...

class GhostNode(_message.Message):
    __slots__ = ("key", "name", "mode", "uid", "gid", "fifo")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    FIFO_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    mode: int
    uid: int
    gid: int
    fifo: bool
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., mode: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., fifo: _Optional[bool] = ...) -> None: ...

class Rlimit(_message.Message):
    __slots__ = ("resource", "soft", "hard")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    SOFT_FIELD_NUMBER: _ClassVar[int]
    HARD_FIELD_NUMBER: _ClassVar[int]
    resource: int
    soft: int
    hard: int
    def __init__(self, resource: _Optional[int] = ..., soft: _Optional[int] = ..., hard: _Optional[int] = ...) -> None: ...

class SigAction(_message.Message):
    __slots__ = ("signo", "handler", "flags", "restorer", "mask")
    SIGNO_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    RESTORER_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    signo: int
    handler: int
    flags: int
    restorer: int
    mask: int
    def __init__(self, signo: _Optional[int] = ..., handler: _Optional[int] = ..., flags: _Optional[int] = ..., restorer: _Optional[int] = ..., mask: _Optional[int] = ...) -> None: ...

class Creds(_message.Message):
    __slots__ = ("uids", "gids", "groups", "no_new_privs", "caps", "audit")
    UIDS_FIELD_NUMBER: _ClassVar[int]
    GIDS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    NO_NEW_PRIVS_FIELD_NUMBER: _ClassVar[int]
    CAPS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    uids: _containers.RepeatedScalarFieldContainer[int]
    gids: _containers.RepeatedScalarFieldContainer[int]
    groups: _containers.RepeatedScalarFieldContainer[int]
    no_new_privs: bool
    caps: Caps
    audit: AuditIds
    def __init__(self, uids: _Optional[_Iterable[int]] = ..., gids: _Optional[_Iterable[int]] = ..., groups: _Optional[_Iterable[int]] = ..., no_new_privs: _Optional[bool] = ..., caps: _Optional[_Union[Caps, _Mapping]] = ..., audit: _Optional[_Union[AuditIds, _Mapping]] = ...) -> None: ...

class Caps(_message.Message):
    __slots__ = ("effective", "permitted", "inheritable", "bounding", "ambient", "securebits")
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    PERMITTED_FIELD_NUMBER: _ClassVar[int]
    INHERITABLE_FIELD_NUMBER: _ClassVar[int]
    BOUNDING_FIELD_NUMBER: _ClassVar[int]
    AMBIENT_FIELD_NUMBER: _ClassVar[int]
    SECUREBITS_FIELD_NUMBER: _ClassVar[int]
    effective: int
    permitted: int
    inheritable: int
    bounding: int
    ambient: int
    securebits: int
    def __init__(self, effective: _Optional[int] = ..., permitted: _Optional[int] = ..., inheritable: _Optional[int] = ..., bounding: _Optional[int] = ..., ambient: _Optional[int] = ..., securebits: _Optional[int] = ...) -> None: ...

class AuditIds(_message.Message):
    __slots__ = ("loginuid", "sessionid")
    LOGINUID_FIELD_NUMBER: _ClassVar[int]
    SESSIONID_FIELD_NUMBER: _ClassVar[int]
    loginuid: int
    sessionid: int
    def __init__(self, loginuid: _Optional[int] = ..., sessionid: _Optional[int] = ...) -> None: ...

class PosixTimer(_message.Message):
    __slots__ = ("id", "clockid", "signo", "value", "notify", "tid", "interval_ns", "value_ns")
    ID_FIELD_NUMBER: _ClassVar[int]
    CLOCKID_FIELD_NUMBER: _ClassVar[int]
    SIGNO_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_FIELD_NUMBER: _ClassVar[int]
    TID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_NS_FIELD_NUMBER: _ClassVar[int]
    VALUE_NS_FIELD_NUMBER: _ClassVar[int]
    id: int
    clockid: int
    signo: int
    value: int
    notify: int
    tid: int
    interval_ns: int
    value_ns: int
    def __init__(self, id: _Optional[int] = ..., clockid: _Optional[int] = ..., signo: _Optional[int] = ..., value: _Optional[int] = ..., notify: _Optional[int] = ..., tid: _Optional[int] = ..., interval_ns: _Optional[int] = ..., value_ns: _Optional[int] = ...) -> None: ...

class ITimer(_message.Message):
    __slots__ = ("which", "interval_us", "value_us")
    WHICH_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_US_FIELD_NUMBER: _ClassVar[int]
    VALUE_US_FIELD_NUMBER: _ClassVar[int]
    which: int
    interval_us: int
    value_us: int
    def __init__(self, which: _Optional[int] = ..., interval_us: _Optional[int] = ..., value_us: _Optional[int] = ...) -> None: ...
