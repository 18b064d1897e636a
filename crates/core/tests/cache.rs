//! A driver that trusts its manifests: a fully cached pipeline reads none of its data
//! files, counted by the kernel (`rchar` in `/proc/self/io`: every byte this process
//! read through a `read` call), while `--verify` reads them all and a rewritten input
//! is noticed without it.
#![cfg(target_os = "linux")]

use futures::future::BoxFuture;
use kiln_core::context::StepContext;
use kiln_core::driver::{Control, Driver, PipelineStep};
use kiln_core::spec::LoadedSpec;
use kiln_core::step::{Step, StepOutcome};
use kiln_core::store::{ArtifactStore, ObjectRef};
use kiln_core::{Error, Result};

const SPEC: &str = r#"
name: cache
data: {format: csv, sources: [{uri: data.csv}]}
schema: [{name: x, type: float}, {name: y, type: string}]
label: {column: y, positive: "yes"}
split: {method: hash, test_fraction: 0.2}
transform: {numeric: [{column: x, standardize: true}]}
"#;

/// 8 MiB: far more than everything else the process reads meanwhile.
const SIZE: usize = 8 << 20;

/// Bytes read by this process so far.
fn bytes_read() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io");
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("rchar in /proc/self/io")
}

/// `copy` reads a source file and writes it as its output; `count` reads `copy`'s
/// output and writes its size.
struct Copy {
    source: String,
}

impl PipelineStep for Copy {
    fn name(&self) -> &'static str {
        "copy"
    }
    fn plan<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Step>> {
        Box::pin(async move {
            let input = ctx
                .input("source", &ObjectRef::parse(&self.source)?)
                .await?;
            Ok(ctx.step("copy", &["split"], vec![input], &[]))
        })
    }
    fn execute<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _control: &'a Control,
        step: Step,
    ) -> BoxFuture<'a, Result<StepOutcome>> {
        Box::pin(step.run(move |w| async move {
            let bytes = ObjectRef::parse(&self.source)?.get().await?;
            w.put("copy.bin", bytes).await?;
            Ok((w, serde_json::json!({})))
        }))
    }
}

struct Count;

impl PipelineStep for Count {
    fn name(&self) -> &'static str {
        "count"
    }
    fn plan<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Step>> {
        Box::pin(async move {
            let copy = ctx.completed_step("copy", "count").await?;
            let input = ctx.input("copy/copy.bin", &copy.object("copy.bin")).await?;
            Ok(ctx.step("count", &["split"], vec![input], &[]))
        })
    }
    fn execute<'a>(
        &'a self,
        ctx: &'a StepContext,
        _control: &'a Control,
        step: Step,
    ) -> BoxFuture<'a, Result<StepOutcome>> {
        Box::pin(step.run(move |w| async move {
            let bytes = ctx.run.child("copy").get("copy.bin").await?;
            w.put_json("count.json", &bytes.len()).await?;
            Ok((w, serde_json::json!({})))
        }))
    }
}

async fn run(ctx: &StepContext, source: &str) -> Result<Vec<bool>> {
    let copy = Copy {
        source: source.to_string(),
    };
    let dag: [&dyn PipelineStep; 2] = [&copy, &Count];
    let driver = Driver::new(Control::default());
    let mut cached = Vec::new();
    for step in dag {
        cached.push(driver.run(step, ctx).await?.cached());
    }
    Ok(cached)
}

fn context(root: &std::path::Path, verify: bool) -> StepContext {
    let spec = LoadedSpec::from_text(SPEC, "spec.yaml", &[]).expect("spec");
    let run = ArtifactStore::open(root.join("run").to_str().expect("utf-8")).expect("run");
    let mut ctx = StepContext::new(spec, run);
    ctx.verify = verify;
    ctx
}

#[tokio::test(flavor = "current_thread")]
async fn a_fully_cached_pipeline_reads_no_data_file() -> std::result::Result<(), Error> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let source = tmp.path().join("source.bin");
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let data: Vec<u8> = (0..SIZE)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&source, &data).expect("write source");
    let source = source.to_str().expect("utf-8").to_string();

    assert_eq!(
        run(&context(tmp.path(), false), &source).await?,
        [false, false]
    );

    // A new process's worth of context (nothing known but what the manifests say).
    let before = bytes_read();
    let cached = run(&context(tmp.path(), false), &source).await?;
    let read = bytes_read() - before;
    assert_eq!(cached, [true, true]);
    assert!(
        read < 256 << 10,
        "a fully cached pipeline read {read} bytes (its data files are {SIZE} bytes each)"
    );

    // `verify`: the source, the copy as an output and the copy as an input, in full.
    let before = bytes_read();
    let cached = run(&context(tmp.path(), true), &source).await?;
    let read = bytes_read() - before;
    assert_eq!(cached, [true, true]);
    assert!(read >= 3 * SIZE as u64, "--verify read only {read} bytes");

    // A rewritten source (same size, one byte changed) has a new version: hashed
    // again, found changed, and both steps run.
    let mut changed = data;
    changed[0] ^= 1;
    std::fs::write(&source, &changed).expect("rewrite source");
    assert_eq!(
        run(&context(tmp.path(), false), &source).await?,
        [false, false]
    );
    Ok(())
}
