"""A virtual machine booted from a real kernel, for what a network namespace cannot show: a node
whose kernel itself is configured differently, such as one booted without IPv6.

QEMU (plain emulation: no KVM needed) boots the Debian cloud kernel that `make test` unpacks
into .cache/test-kernel, with an initramfs built here from this machine's own binaries: BusyBox
for the shell and its tools, the iptables tools, `setpriv`, the kernel's netfilter modules, and
whatever files a test adds (each executable with the libraries it links). The VM's /init runs the
test's script and powers off. The script reports with `section NAME COMMAND...`, which runs the
command and sends its output and exit status back over the serial console between markers.
"""

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KERNEL_DIR = REPO / ".cache" / "test-kernel"
BOOT_DEADLINE = 900.0  # seconds: emulation is slow, and the machine is shared
XTABLES_EXTENSIONS = Path("/usr/lib/x86_64-linux-gnu/xtables")
# The iptables tools by their names, as the iptables images provide them. In a Pod's namespace
# the image's iptables-wrapper runs the nf_tables backend, so the unsuffixed names are nf_tables.
XTABLES_TOOLS = {
    f"{family}tables-{backend}-{verb}": f"xtables-{backend}-multi"
    for family in ("ip", "ip6")
    for backend in ("nft", "legacy")
    for verb in ("restore", "save")
} | {
    f"{family}tables-{verb}": "xtables-nft-multi"
    for family in ("ip", "ip6")
    for verb in ("restore", "save")
}
# Kernel modules the initramfs carries (the rest of the tree is left out to keep it small).
MODULE_TREES = ("kernel/net", "kernel/lib", "kernel/crypto", "kernel/drivers/net/dummy.ko")

_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up
section() {
    name=$1
    shift
    "$@" > /tmp/section 2>&1 < /dev/null
    status=$?
    echo  # the console may still hold the firmware's escape sequences
    echo "@@@BEGIN $name"
    cat /tmp/section
    echo "@@@STATUS $name $status"
}
. /test.sh
echo "@@@DONE"
poweroff -f
"""
_SECTION = re.compile(r"^@@@BEGIN (\S+)\n(.*?)^@@@STATUS \1 (\d+)$", re.MULTILINE | re.DOTALL)


class Unavailable(RuntimeError):
    """The machine lacks what booting the VM needs; the message says what."""


@dataclass(frozen=True)
class Section:
    status: int  # the command's exit status
    output: str  # its stdout and stderr


@dataclass(frozen=True)
class Kernel:
    vmlinuz: Path
    modules: Path  # lib/modules/<release>


def find_kernel() -> Kernel:
    vmlinuz = sorted(KERNEL_DIR.glob("boot/vmlinuz-*"))
    modules = sorted(KERNEL_DIR.glob("lib/modules/*"))
    if not vmlinuz or not modules:
        raise Unavailable(f"no kernel in {KERNEL_DIR}: `make test` unpacks one there")
    return Kernel(vmlinuz[-1], modules[-1])


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise Unavailable(f"needs the {name} command")
    return path


def unavailable_reason() -> str | None:
    """Why the VM cannot be booted here, or None."""
    try:
        find_kernel()
        for name in ("qemu-system-x86_64", "busybox", "cpio", "depmod", "setpriv"):
            _tool(name)
        for name in set(XTABLES_TOOLS.values()):
            _tool(name)
    except Unavailable as error:
        return str(error)
    if not XTABLES_EXTENSIONS.is_dir():
        return f"needs the iptables extensions in {XTABLES_EXTENSIONS}"
    return None


def _libraries(executable: Path) -> list[Path]:
    """The shared libraries an executable links, by their paths on this machine."""
    result = subprocess.run(
        ["ldd", str(executable)], capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:  # a static executable, or not an ELF file
        return []
    return [Path(path) for path in re.findall(r"(/\S+) \(0x", result.stdout)]


def _add(root: Path, guest: str, host: Path) -> None:
    target = root / guest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if host.is_dir():
        shutil.copytree(host, target, symlinks=False, dirs_exist_ok=True)
        return
    shutil.copy2(host, target)
    if os.access(host, os.X_OK):
        for library in _libraries(host):
            if not (root / str(library).lstrip("/")).exists():
                _add(root, str(library), library.resolve())


def build_initramfs(kernel: Kernel, script: str, files: Mapping[str, Path], work: Path) -> Path:
    """An initramfs (gzip-compressed cpio) whose /init runs `script` with `files` in place."""
    root = work / "root"
    for directory in ("proc", "sys", "dev", "tmp", "run", "etc"):
        (root / directory).mkdir(parents=True)
    _add(root, "/bin/busybox", Path(_tool("busybox")))
    _add(root, "/usr/bin/setpriv", Path(_tool("setpriv")))
    for multi in set(XTABLES_TOOLS.values()):
        _add(root, f"/usr/sbin/{multi}", Path(_tool(multi)))
    for name, multi in XTABLES_TOOLS.items():
        (root / "usr/sbin" / name).symlink_to(multi)
    _add(root, str(XTABLES_EXTENSIONS), XTABLES_EXTENSIONS)
    release = kernel.modules.name
    for tree in MODULE_TREES:
        _add(root, f"/lib/modules/{release}/{tree}", kernel.modules / tree)
    for name in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        _add(root, f"/lib/modules/{release}/{name}", kernel.modules / name)
    subprocess.run(
        [_tool("depmod"), "-b", str(root), release], check=True, capture_output=True, timeout=300
    )
    (root / "sbin").mkdir()
    (root / "sbin/modprobe").symlink_to("/bin/busybox")  # for the kernel's module requests
    for guest, host in files.items():
        _add(root, guest, host)
    (root / "init").write_text(_INIT)
    (root / "init").chmod(0o755)
    (root / "test.sh").write_text(script)
    listing = subprocess.run(
        ["find", "."], cwd=root, capture_output=True, check=True, timeout=120
    ).stdout
    archive = work / "initramfs.cpio"
    with archive.open("wb") as out:
        subprocess.run(
            [_tool("cpio"), "-o", "-H", "newc", "--quiet"],
            cwd=root,
            input=listing,
            stdout=out,
            check=True,
            timeout=600,
        )
    shutil.rmtree(root)
    return archive


def boot(script: str, files: Mapping[str, Path], kernel_arguments: str, work: Path) -> dict:
    """Boots the kernel with `kernel_arguments`, runs `script` (sh, with `section`), and returns
    its sections by name. Raises RuntimeError with the console output if the VM does not finish.
    """
    kernel = find_kernel()
    initramfs = build_initramfs(kernel, script, files, work)
    command = [
        _tool("qemu-system-x86_64"),
        "-accel",
        "tcg",
        "-m",
        "2048",
        "-smp",
        "2",
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
        "-kernel",
        str(kernel.vmlinuz),
        "-initrd",
        str(initramfs),
        "-append",
        f"console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init {kernel_arguments}",
    ]
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=BOOT_DEADLINE,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = (error.stdout or b"").decode(errors="replace")
        raise RuntimeError(
            f"the VM did not finish in {BOOT_DEADLINE} s:\n{output[-4000:]}"
        ) from None
    console = result.stdout.decode(errors="replace")
    if "@@@DONE" not in console:
        raise RuntimeError(
            f"the VM stopped before the script ended (qemu exited {result.returncode}):\n"
            f"{console[-4000:]}\n{result.stderr.decode(errors='replace')[-2000:]}"
        )
    return {
        match.group(1): Section(int(match.group(3)), match.group(2))
        for match in _SECTION.finditer(console.replace("\r\n", "\n"))
    }
