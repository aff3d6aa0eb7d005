//! Running crash trials: a worker process per phase, killed at an armed crash point or after
//! a random delay, then the checks of [`super::verdict`] and the work's own.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use oci_store::traits::registry::registered_backends;

use super::snapshot::Snapshot;
use super::trial::Trial;
use super::verdict::fsck_repairs_to_clean;
use super::works::{self, Work};
use crate::content::SeededRandom;
use crate::matrix::Combination;

/// No phase of a work takes this long unless something hangs.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

#[derive(Clone, Debug)]
pub struct CampaignOptions {
    /// Trials per backend combination (at least one per crash point whatever this says).
    pub trials: usize,
    pub seed: u64,
    /// Of the trials beyond one per crash point, the share killed at a random moment
    /// instead of at an armed point.
    pub random_share: f64,
    /// Print each trial as it ends.
    pub verbose: bool,
}

/// How a trial's run was interrupted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// Killed by itself at the `nth` time it reached `point`.
    Armed { point: String, nth: u64 },
    /// Killed by the harness after `delay`.
    RandomKill { delay: Duration },
}

#[derive(Clone, Debug)]
pub struct TrialResult {
    pub work: &'static str,
    pub interruption: Interruption,
    /// The crash point the worker killed itself at, if it did.
    pub crashed_at: Option<String>,
    /// Whether the run ended by itself with success (an armed point not reached that time,
    /// or a random kill that came too late).
    pub completed: bool,
    pub elapsed: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct CombinationReport {
    pub label: String,
    pub trials: Vec<TrialResult>,
    /// Times each point was reached by the clean runs of all works.
    pub reached: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl CombinationReport {
    pub fn crashed_points(&self) -> BTreeSet<String> {
        self.trials
            .iter()
            .filter_map(|t| t.crashed_at.clone())
            .collect()
    }

    /// One line: trials, of which armed/random/crashed/completed, points crashed at.
    pub fn summary(&self) -> String {
        let armed = self
            .trials
            .iter()
            .filter(|t| matches!(t.interruption, Interruption::Armed { .. }))
            .count();
        let killed = self.trials.iter().filter(|t| !t.completed).count();
        format!(
            "{}: {} trials ({} at armed points, {} at random moments), {} killed mid-work, \
             {} completed before the kill; {} distinct crash points crashed at; {:.1} s",
            self.label,
            self.trials.len(),
            armed,
            self.trials.len() - armed,
            killed,
            self.trials.len() - killed,
            self.crashed_points().len(),
            self.elapsed.as_secs_f64()
        )
    }
}

/// The crash points a combination must crash at: every point compiled into the worker, less
/// those of backends it does not use (points are named `<backend>.…` in backend code).
pub fn required_points(all: &[String], combination: &Combination) -> Vec<String> {
    let used = [
        combination.blobs,
        combination.index,
        combination.extra,
        combination.kv,
    ];
    let backend_names: Vec<&str> = registered_backends().iter().map(|r| r.name).collect();
    all.iter()
        .filter(|point| {
            let first = point.split('.').next().unwrap_or_default();
            !backend_names.contains(&first) || used.contains(&first)
        })
        .cloned()
        .collect()
}

/// The crash points compiled into `worker` (`crash list-points`).
pub fn compiled_points(worker: &Path) -> Result<Vec<String>, String> {
    let output = Command::new(worker)
        .arg("list-points")
        .output()
        .map_err(|e| format!("running {} list-points: {e}", worker.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} list-points failed: {}",
            worker.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect())
}

struct Worker<'a> {
    exe: &'a Path,
}

impl Worker<'_> {
    fn command(&self, trial: &Trial, work: &dyn Work, phase: &str) -> Command {
        let c = &trial.combination;
        let mut command = Command::new(self.exe);
        command
            .arg("worker")
            .arg("--trial")
            .arg(&trial.dir)
            .args(["--work", work.name(), "--phase", phase])
            .args(["--attempt", &trial.attempt.to_string()])
            .args(["--blobs", c.blobs, "--index", c.index])
            .args(["--extra", c.extra, "--kv", c.kv])
            .env_remove("OCI_STORE_CRASH_AT")
            .env_remove("OCI_STORE_CRASH_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// Runs a phase that must succeed.
    fn run_to_success(&self, trial: &Trial, work: &dyn Work, phase: &str) -> Result<(), String> {
        let child = self
            .command(trial, work, phase)
            .spawn()
            .map_err(|e| format!("starting the {phase} worker: {e}"))?;
        let (status, stderr) = wait_bounded(child, None)?;
        if !status.success() {
            return Err(format!(
                "{} {phase} failed ({status}): {stderr}",
                work.name()
            ));
        }
        Ok(())
    }
}

/// Waits for `child`, killing it after `kill_after` (if given) or at [`PHASE_LIMIT`] (an error:
/// it hung). Returns its status and stderr.
fn wait_bounded(
    mut child: Child,
    kill_after: Option<Duration>,
) -> Result<(ExitStatus, String), String> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("waiting: {e}"))? {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                std::io::Read::read_to_string(&mut pipe, &mut stderr).ok();
            }
            return Ok((status, stderr.trim().to_string()));
        }
        let elapsed = started.elapsed();
        if kill_after.is_some_and(|after| elapsed >= after) {
            child
                .kill()
                .map_err(|e| format!("killing the worker: {e}"))?;
            let status = child
                .wait()
                .map_err(|e| format!("reaping the worker: {e}"))?;
            return Ok((status, String::new()));
        }
        if elapsed >= PHASE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("a worker hung for {PHASE_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn killed(status: &ExitStatus) -> bool {
    status.signal() == Some(libc_sigkill())
}

const fn libc_sigkill() -> i32 {
    9
}

/// What the log of a run says: every point reached (with counts) and the one crashed at.
fn read_log(path: &Path) -> (BTreeMap<String, u64>, Option<String>) {
    let mut reached = BTreeMap::new();
    let mut crashed = None;
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        match line.strip_prefix("crash ") {
            Some(point) => crashed = Some(point.to_string()),
            None => *reached.entry(line.to_string()).or_insert(0) += 1,
        }
    }
    (reached, crashed)
}

/// One clean run of a work: the points it reaches and the snapshot its trials must end at.
struct Baseline {
    reached: BTreeMap<String, u64>,
    run_time: Duration,
    snapshot: Snapshot,
}

struct Runner<'a> {
    worker: Worker<'a>,
    combination: &'a Combination,
    root: PathBuf,
    next_dir: usize,
}

impl Runner<'_> {
    fn fresh_dir(&mut self, work: &dyn Work) -> Result<PathBuf, String> {
        self.next_dir += 1;
        let dir = self
            .root
            .join(format!("{:04}-{}", self.next_dir, work.name()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Setup; the interruptible run (armed, killed after a delay, or neither); the checks;
    /// repair; the second run; settle. Returns the trial's result and final snapshot.
    fn trial(
        &mut self,
        work: &'static dyn Work,
        interruption: Option<Interruption>,
    ) -> Result<(TrialResult, Snapshot, BTreeMap<String, u64>), String> {
        let dir = self.fresh_dir(work)?;
        let first = Trial::new(&dir, self.combination, 0);
        self.worker.run_to_success(&first, work, "setup")?;
        let mut command = self.worker.command(&first, work, "run");
        command.env("OCI_STORE_CRASH_LOG", first.log_path());
        let mut kill_after = None;
        match &interruption {
            Some(Interruption::Armed { point, nth }) => {
                command.env("OCI_STORE_CRASH_AT", format!("{point}:{nth}"));
            }
            Some(Interruption::RandomKill { delay }) => kill_after = Some(*delay),
            None => {}
        }
        let started = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("starting the run worker: {e}"))?;
        let (status, stderr) = wait_bounded(child, kill_after)?;
        let elapsed = started.elapsed();
        let completed = status.success();
        if !completed && !killed(&status) {
            return Err(format!("{} run failed ({status}): {stderr}", work.name()));
        }
        let (reached, crashed_at) = read_log(&first.log_path());
        if let (Some(Interruption::Armed { point, .. }), Some(crashed)) =
            (&interruption, &crashed_at)
        {
            if point != crashed {
                return Err(format!("armed at {point}, the worker crashed at {crashed}"));
            }
        }
        if interruption.is_none() && !completed {
            return Err(format!("the clean run of {} was killed", work.name()));
        }

        let check = |attempt: u32| -> Result<oci_store::Store, String> {
            let trial = Trial::new(&dir, self.combination, attempt);
            trial.open_store()
        };
        {
            let store = check(0)?;
            work.check(&store, &first, completed)
                .map_err(|e| format!("after the run: {e}"))?;
            fsck_repairs_to_clean(&store)?;
        }
        let second = Trial::new(&dir, self.combination, 1);
        self.worker
            .run_to_success(&second, work, "run")
            .map_err(|e| format!("the same work again after the crash: {e}"))?;
        let store = check(1)?;
        work.check(&store, &second, true)
            .map_err(|e| format!("after the second run: {e}"))?;
        work.settle(&store, &second)
            .map_err(|e| format!("settling: {e}"))?;
        fsck_repairs_to_clean(&store).map_err(|e| format!("after settling: {e}"))?;
        let snapshot = Snapshot::of(&store)?;
        drop(store);
        let result = TrialResult {
            work: work.name(),
            interruption: interruption.unwrap_or(Interruption::RandomKill {
                delay: Duration::MAX,
            }),
            crashed_at,
            completed,
            elapsed,
        };
        let _ = std::fs::remove_dir_all(&dir);
        Ok((result, snapshot, reached))
    }

    fn baseline(&mut self, work: &'static dyn Work) -> Result<Baseline, String> {
        let (result, snapshot, reached) = self.trial(work, None)?;
        Ok(Baseline {
            reached,
            run_time: result.elapsed,
            snapshot,
        })
    }
}

/// Runs the crash trials of one backend combination with the worker binary `worker`: a clean
/// run of each work, then at least one trial armed at each crash point the combination must
/// reach, then more (armed at random points and counts, or killed at random moments) up to
/// `options.trials`. Fails on the first trial whose checks fail (naming the work, the point
/// and the trial directory, which is kept), or if a required point was never crashed at.
pub fn run_combination(
    worker: &Path,
    combination: &Combination,
    options: &CampaignOptions,
) -> Result<CombinationReport, String> {
    let started = Instant::now();
    // Kept when a trial fails (its directory is named in the error); removed on success.
    let root = tempfile::Builder::new()
        .prefix("oci-store-crash-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))?
        .keep();
    let mut runner = Runner {
        worker: Worker { exe: worker },
        combination,
        root: root.clone(),
        next_dir: 0,
    };
    let mut report = CombinationReport {
        label: combination.label(),
        ..CombinationReport::default()
    };
    let applicable: Vec<&'static dyn Work> = works::all()
        .into_iter()
        .filter(|work| work.applies_to(combination))
        .collect();
    let mut baselines = Vec::new();
    for work in &applicable {
        let baseline = runner.baseline(*work).map_err(|e| {
            format!(
                "{}: clean run of {}: {e} (in {})",
                combination.label(),
                work.name(),
                root.display()
            )
        })?;
        for (point, count) in &baseline.reached {
            *report.reached.entry(point.clone()).or_insert(0) += count;
        }
        baselines.push((*work, baseline));
    }
    let required = required_points(&compiled_points(worker)?, combination);
    let unreached: Vec<&String> = required
        .iter()
        .filter(|point| !report.reached.contains_key(*point))
        .collect();
    if !unreached.is_empty() {
        return Err(format!(
            "{}: no work reaches these crash points: {unreached:?}",
            combination.label()
        ));
    }

    // One trial per required point, each at a work that reaches it (spread over the works),
    // then random ones.
    let mut random = SeededRandom::new(options.seed);
    let mut plan: Vec<(usize, Interruption)> = Vec::new();
    for point in &required {
        let reaching: Vec<usize> = baselines
            .iter()
            .enumerate()
            .filter(|(_, (_, b))| b.reached.contains_key(point))
            .map(|(i, _)| i)
            .collect();
        let work = reaching[random.below(reaching.len() as u64) as usize];
        let count = baselines[work].1.reached[point];
        plan.push((
            work,
            Interruption::Armed {
                point: point.clone(),
                nth: 1 + random.below(count),
            },
        ));
    }
    while plan.len() < options.trials {
        let work = random.below(baselines.len() as u64) as usize;
        let baseline = &baselines[work].1;
        let roll = random.below(1000) as f64 / 1000.0;
        if roll < options.random_share || baseline.reached.is_empty() {
            let span = baseline.run_time.as_micros().max(1) as u64;
            plan.push((
                work,
                Interruption::RandomKill {
                    delay: Duration::from_micros(random.below(span)),
                },
            ));
        } else {
            let points: Vec<(&String, &u64)> = baseline.reached.iter().collect();
            let (point, count) = points[random.below(points.len() as u64) as usize];
            plan.push((
                work,
                Interruption::Armed {
                    point: point.clone(),
                    nth: 1 + random.below(*count),
                },
            ));
        }
    }

    // Every trial runs, so one report lists every failing point.
    let mut failures = Vec::new();
    for (work, interruption) in plan {
        let (work, baseline) = (&baselines[work].0, &baselines[work].1);
        let described = format!("{}: {} {interruption:?}", combination.label(), work.name());
        let kept_dir = runner
            .root
            .join(format!("{:04}-{}", runner.next_dir + 1, work.name()));
        let (result, snapshot, _) = match runner.trial(*work, Some(interruption)) {
            Ok(done) => done,
            Err(e) => {
                failures.push(format!(
                    "{described}: {e} (trial kept in {})",
                    kept_dir.display()
                ));
                continue;
            }
        };
        let differences = snapshot.differences(&baseline.snapshot);
        if !differences.is_empty() {
            failures.push(format!(
                "{described}: after repair and a second run the store differs from a clean \
                 run's:\n{}",
                differences.join("\n")
            ));
        }
        if options.verbose {
            eprintln!(
                "{described}: crashed at {:?}, completed {}, {:?}",
                result.crashed_at, result.completed, result.elapsed
            );
        }
        report.trials.push(result);
    }
    if !failures.is_empty() {
        return Err(format!(
            "{} of {} trials failed:\n{}",
            failures.len(),
            failures.len() + report.trials.len(),
            failures.join("\n")
        ));
    }
    let crashed = report.crashed_points();
    let never: Vec<&String> = required.iter().filter(|p| !crashed.contains(*p)).collect();
    if !never.is_empty() {
        return Err(format!(
            "{}: never crashed at these points (their trials completed first): {never:?}",
            combination.label()
        ));
    }
    report.elapsed = started.elapsed();
    let _ = std::fs::remove_dir_all(&root);
    Ok(report)
}
