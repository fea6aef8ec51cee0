//! Builds the C and C++ test programs of `tests/c/` against the freshly built
//! `libkthread.a` and `libkthread.so`, runs each under a watchdog, and checks
//! its report.
//!
//! The library comes from a nested `cargo build -p kthread-capi --lib` in
//! the profile of this test binary: `cargo test` builds the integration
//! tests of a package whose library is only a `staticlib`/`cdylib` without
//! building that library (it cannot be linked into Rust tests), so a plain
//! `cargo test --workspace` from a fresh clone would otherwise find no
//! library, or a stale one. Cargo does not hold the build lock while tests
//! run, and the JSON messages name the exact files built
//! (`target/<profile>/libkthread.a` and `libkthread.so`). The programs are
//! compiled with the system compiler (`$CC`, default `cc`; `$CXX`, default
//! `c++`) into `CARGO_TARGET_TMPDIR`.
//!
//! Each program prints `ok NAME` or `FAIL NAME (...)` per check and a last
//! line `# N passed, M failed`, and exits non-zero on failure. A program
//! still running after [`TIMEOUT`] is killed and the test fails with its
//! output so far.
//!
//! The ```` ```c ```` blocks of `docs/guide-porting-kernel-code.md` are
//! compiled the same way (`porting_guide_snippets_compile`), and the ones
//! with a `main` are run.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// How long one program may run before it is killed.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the static library needs from the system (`rustc --print native-static-libs`).
const STATIC_DEPS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

#[derive(Clone, Copy, Debug)]
enum Link {
    Static,
    Shared,
}

#[derive(Clone, Copy, Debug)]
enum Lang {
    C,
    Cxx,
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The freshly built static and shared libraries.
struct Libs {
    static_lib: PathBuf,
    shared_lib: PathBuf,
}

/// Builds the library once per test binary (the tests share it).
fn libs() -> &'static Libs {
    static LIBS: OnceLock<Libs> = OnceLock::new();
    LIBS.get_or_init(build_libs)
}

/// The profile this test binary was built in, as a `cargo build` argument:
/// the binary sits in `target/[<triple>/]<profile dir>/deps/`.
fn profile_args() -> Vec<String> {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|d| d.to_str())
        .unwrap_or("debug");
    match dir {
        "debug" => vec![],
        "release" => vec!["--release".into()],
        other => vec!["--profile".into(), other.into()],
    }
}

fn build_libs() -> Libs {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "kthread-capi", "--lib"])
        .arg("--message-format=json-render-diagnostics")
        .args(profile_args())
        .current_dir(manifest_dir());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<PathBuf> = stdout
        .lines()
        .filter(|l| l.contains(r#""reason":"compiler-artifact""#))
        .filter(|l| {
            l.contains("kthread-capi") && l.contains(r#""crate_types":["staticlib","cdylib"]"#)
        })
        .flat_map(artifact_files)
        .collect();
    let find = |suffix: &str| {
        files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| n == suffix))
            .unwrap_or_else(|| panic!("{cmd:?} built no {suffix}: {files:?}\n{stdout}"))
            .clone()
    };
    Libs {
        static_lib: find("libkthread.a"),
        shared_lib: find("libkthread.so"),
    }
}

/// The `"filenames":[...]` of one cargo JSON artifact message.
fn artifact_files(line: &str) -> Vec<PathBuf> {
    let Some(start) = line.find(r#""filenames":["#) else {
        return vec![];
    };
    let list = &line[start + r#""filenames":["#.len()..];
    let list = &list[..list.find(']').unwrap_or(list.len())];
    list.split(r#"",""#)
        .map(|f| {
            f.trim_matches('"')
                .replace(r"\\", r"\")
                .replace(r#"\""#, "\"")
        })
        .map(PathBuf::from)
        .collect()
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-programs");
    fs::create_dir_all(&dir).expect("create the output directory");
    dir
}

fn compiler(lang: Lang) -> String {
    let (var, default) = match lang {
        Lang::C => ("CC", "cc"),
        Lang::Cxx => ("CXX", "c++"),
    };
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// The compiler with the flags every program is built with (language
/// standard, warnings as errors, the header's directory), before the source.
fn compiler_command(lang: Lang) -> Command {
    let mut cmd = Command::new(compiler(lang));
    match lang {
        Lang::C => cmd.arg("-std=gnu11"),
        Lang::Cxx => cmd.arg("-std=c++17"),
    };
    cmd.args(["-Wall", "-Wextra", "-Werror", "-g", "-O1", "-pthread"])
        .arg("-I")
        .arg(manifest_dir().join("include"))
        .arg("-I")
        .arg(manifest_dir().join("tests/c"));
    cmd
}

/// Appends what links against libkthread as `link` says.
fn link_args(cmd: &mut Command, link: Link) {
    let libs = libs();
    match link {
        Link::Static => {
            cmd.arg(&libs.static_lib).args(STATIC_DEPS);
        }
        Link::Shared => {
            let dir = libs.shared_lib.parent().unwrap();
            cmd.arg("-L")
                .arg(dir)
                .arg("-lkthread")
                .arg(format!("-Wl,-rpath,{}", dir.display()));
        }
    }
}

/// Runs a compiler command: `Err` with the command and its output if it fails.
fn run_compiler(mut cmd: Command) -> Result<(), String> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {:?}: {e}", cmd.get_program()));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Compiles `src` into an executable linked against libkthread as `link` says.
fn compile(src: &Path, lang: Lang, link: Link) -> PathBuf {
    let stem = src.file_stem().unwrap().to_string_lossy();
    let exe = out_dir().join(format!("{stem}-{}", format!("{link:?}").to_lowercase()));
    let mut cmd = compiler_command(lang);
    cmd.arg(src).arg("-o").arg(&exe);
    link_args(&mut cmd, link);
    if let Err(e) = run_compiler(cmd) {
        panic!("compiling {} failed: {e}", src.display());
    }
    exe
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `exe`, killing it after [`TIMEOUT`].
fn run(exe: &Path) -> Run {
    let base = exe.with_extension("");
    let (out_path, err_path) = (base.with_extension("stdout"), base.with_extension("stderr"));
    let mut child = Command::new(exe)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    // Wait on another thread so the timeout is a real wait, not a poll.
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(TIMEOUT) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            // SAFETY: kill takes plain integers; the child has not been
            // reaped (its waiter thread is still blocked in wait()).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = rx.recv();
            panic!(
                "{} still running after {TIMEOUT:?}: killed\n--- stdout\n{}--- stderr\n{}",
                exe.display(),
                fs::read_to_string(&out_path).unwrap_or_default(),
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
    };
    Run {
        status,
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Checks a program's report: exit 0, only `ok` lines and `#` comments, a
/// summary that counts them and no failure.
fn check_report(exe: &Path, r: &Run) {
    let context = || {
        format!(
            "{} ({})\n--- stdout\n{}--- stderr\n{}",
            exe.display(),
            r.status,
            r.stdout,
            r.stderr
        )
    };
    let lines: Vec<&str> = r.stdout.lines().collect();
    let oks = lines.iter().filter(|l| l.starts_with("ok ")).count();
    let strays: Vec<&&str> = lines
        .iter()
        .filter(|l| !l.starts_with("ok ") && !l.starts_with("# "))
        .collect();
    assert!(
        strays.is_empty(),
        "lines that are not ok: {strays:?}\n{}",
        context()
    );
    assert!(oks > 0, "no check ran\n{}", context());
    let summary = format!("# {oks} passed, 0 failed");
    assert_eq!(
        lines.last().copied(),
        Some(summary.as_str()),
        "{}",
        context()
    );
    assert!(r.status.success(), "non-zero exit\n{}", context());
}

/// Builds `tests/c/<name>` both ways, runs each, and checks both reports.
fn run_program(name: &str, lang: Lang) {
    let src = manifest_dir().join("tests/c").join(name);
    for link in [Link::Static, Link::Shared] {
        let exe = compile(&src, lang, link);
        let r = run(&exe);
        check_report(&exe, &r);
    }
}

#[test]
fn kthread_basic() {
    run_program("kthread_basic.c", Lang::C);
}

#[test]
fn worker_legacy() {
    run_program("worker_legacy.c", Lang::C);
}

#[test]
fn worker_modern() {
    run_program("worker_modern.c", Lang::C);
}

#[test]
fn park_freeze() {
    run_program("park_freeze.c", Lang::C);
}

#[test]
fn signal_queue() {
    run_program("signal_queue.c", Lang::C);
}

#[test]
fn wait_queue() {
    run_program("wait_queue.c", Lang::C);
}

#[test]
fn self_ending() {
    run_program("self_ending.c", Lang::C);
}

#[test]
fn fork_child() {
    run_program("fork_child.c", Lang::C);
}

#[test]
fn bad_pointers() {
    run_program("bad_pointers.c", Lang::C);
}

#[test]
fn header_in_cxx17() {
    run_program("header_cxx.cpp", Lang::Cxx);
}

/// The header alone compiles cleanly as strict ISO C11 and as C++11.
#[test]
fn header_is_strict_clean() {
    let dir = out_dir();
    for (lang, std, file) in [
        (Lang::C, "-std=c11", "strict.c"),
        (Lang::Cxx, "-std=c++11", "strict.cpp"),
    ] {
        let src = dir.join(file);
        fs::write(
            &src,
            "#include \"kthread.h\"\nint main(void) { return 0; }\n",
        )
        .unwrap();
        let out = Command::new(compiler(lang))
            .args([
                std,
                "-pedantic",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                "-I",
            ])
            .arg(manifest_dir().join("include"))
            .arg(&src)
            .output()
            .expect("run the compiler");
        assert!(
            out.status.success(),
            "kthread.h is not clean {std} -pedantic:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The documented example builds with the README's command line and runs.
#[test]
fn c_example() {
    let src = manifest_dir().join("../examples/c/hello_kthread.c");
    for link in [Link::Static, Link::Shared] {
        let exe = compile(&src, Lang::C, link);
        let r = run(&exe);
        assert!(
            r.status.success() && r.stdout.contains("stopped: kthread_stop() returned 3"),
            "{} ({})\n--- stdout\n{}--- stderr\n{}",
            exe.display(),
            r.status,
            r.stdout,
            r.stderr
        );
    }
}

/// `kthread.pc` gives flags that build and link the example against the
/// shared library, and its version is the crate's.
#[test]
fn pkg_config_file() {
    let pc = fs::read_to_string(manifest_dir().join("kthread.pc")).unwrap();
    assert!(
        pc.lines()
            .any(|l| l == format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "kthread.pc's Version is not {}",
        env!("CARGO_PKG_VERSION")
    );
    let libdir = libs().shared_lib.parent().unwrap().to_owned();
    let flags = Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", manifest_dir())
        .arg(format!("--define-variable=libdir={}", libdir.display()))
        .arg(format!(
            "--define-variable=includedir={}",
            manifest_dir().join("include").display()
        ))
        .args(["--cflags", "--libs", "kthread"])
        .output();
    let flags = match flags {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout).unwrap(),
        Ok(out) => panic!(
            "pkg-config rejects kthread.pc: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            // Not every machine has pkg-config; the file's syntax is then
            // only checked by the Version line above.
            eprintln!("pkg-config not available ({e}): skipping the link check");
            return;
        }
    };
    let exe = out_dir().join("hello_kthread-pkgconfig");
    let out = Command::new(compiler(Lang::C))
        .arg("-std=gnu11")
        .arg(manifest_dir().join("../examples/c/hello_kthread.c"))
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", libdir.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "building with pkg-config's flags ({flags}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = run(&exe);
    assert!(r.status.success(), "{}\n{}", r.stdout, r.stderr);
}

/// One fenced ```` ```c ```` block of a Markdown file.
struct Snippet {
    /// 1-based, in the order of the file.
    index: usize,
    /// The line of the opening fence.
    line: usize,
    code: String,
}

/// Every ```` ```c ```` block of `markdown` (the fence exactly `c`: not
/// `cpp`, not an untagged block).
fn c_snippets(markdown: &str) -> Vec<Snippet> {
    let mut snippets = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (n, text) in markdown.lines().enumerate() {
        let fence = text.trim();
        match &mut open {
            None if fence == "```c" => open = Some((n + 1, String::new())),
            None => {}
            Some((line, code)) => {
                if fence == "```" {
                    snippets.push(Snippet {
                        index: snippets.len() + 1,
                        line: *line,
                        code: std::mem::take(code),
                    });
                    open = None;
                } else {
                    code.push_str(text);
                    code.push('\n');
                }
            }
        }
    }
    if let Some((line, _)) = open {
        panic!("the ```c block opened at line {line} is never closed");
    }
    snippets
}

/// The file a snippet names itself in its first line, as in
/// `/* kcompat.h - ... */`: a header that later snippets include.
fn snippet_header_name(code: &str) -> Option<&str> {
    let name = code
        .lines()
        .next()?
        .strip_prefix("/* ")?
        .split(' ')
        .next()?;
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    (plain && name.ends_with(".h") && name.len() > 2).then_some(name)
}

/// Every ```` ```c ```` block of the porting guide compiles with the flags
/// of the programs above. A block with `int main` is a complete program:
/// it is linked against the static and the shared library, run under the
/// watchdog, and must exit 0. Any other block is a fragment, compiled to
/// an object (`-c`; `-Wno-unused-function`, since a fragment may leave out
/// the callers of its static functions). A block whose first line names a
/// header (`/* kcompat.h - ...`) is also written under that name, next to
/// the others, so that later blocks can `#include "kcompat.h"`.
#[test]
fn porting_guide_snippets_compile() {
    let guide = manifest_dir().join("../docs/guide-porting-kernel-code.md");
    let text = fs::read_to_string(&guide)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", guide.display()));
    let snippets = c_snippets(&text);
    assert!(
        !snippets.is_empty(),
        "{} has no ```c block: nothing would be checked",
        guide.display()
    );

    let dir = out_dir().join("porting-guide");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the snippet directory");
    // Write every block first: a program may include a header shown later.
    let srcs: Vec<PathBuf> = snippets
        .iter()
        .map(|s| {
            if let Some(name) = snippet_header_name(&s.code) {
                fs::write(dir.join(name), &s.code).unwrap();
            }
            let src = dir.join(format!("snippet-{}.c", s.index));
            fs::write(&src, &s.code).unwrap();
            src
        })
        .collect();

    let mut failures = Vec::new();
    for (s, src) in snippets.iter().zip(&srcs) {
        let what = format!(
            "snippet {} of {} (the ```c block at line {} of {})",
            s.index,
            snippets.len(),
            s.line,
            guide.display()
        );
        if !s.code.contains("int main") {
            let mut cmd = compiler_command(Lang::C);
            cmd.args(["-Wno-unused-function", "-c"])
                .arg(src)
                .arg("-o")
                .arg(src.with_extension("o"));
            if let Err(e) = run_compiler(cmd) {
                failures.push(format!("{what} does not compile: {e}"));
            }
            continue;
        }
        for link in [Link::Static, Link::Shared] {
            let exe = dir.join(format!(
                "snippet-{}-{}",
                s.index,
                format!("{link:?}").to_lowercase()
            ));
            let mut cmd = compiler_command(Lang::C);
            cmd.arg(src).arg("-o").arg(&exe);
            link_args(&mut cmd, link);
            if let Err(e) = run_compiler(cmd) {
                failures.push(format!("{what} does not build ({link:?}): {e}"));
                break;
            }
            let r = run(&exe);
            if !r.status.success() {
                failures.push(format!(
                    "{what} ({link:?}) exited with {}\n--- stdout\n{}--- stderr\n{}",
                    r.status, r.stdout, r.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
