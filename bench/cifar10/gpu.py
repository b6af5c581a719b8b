"""CIFAR-10 in the paper's regime on one GPU: a ResNet teacher, convolutional students, 10/30/100 calls per class.

    bash bench/cifar10/gpu.sh            # the lead's GPU run (writes under $OUT)
    bash bench/cifar10/gpu.sh --smoke    # the same code path on the CPU at tiny scale (a few minutes)

Protocol (docs/benchmarks/cifar10.md): train/ (50,000) is split (seeded, `data.split_seed`) into the pool
(45,000, the only inputs the teacher may be asked about) and the dev split (5,000, for every choice: recipe,
grids); test/ (10,000) is never shown to the teacher and never used for a choice. Every student row is
params.yaml with the row's `overrides` (written in results.csv) and is trained by the package's `train` stage
function; `dvc repro` with those overrides (data.source = the unpacked train/, data.test_size = 5000) builds
the same student, and its validate `test_accuracy` is this row's `dev_accuracy`. One difference from
`dvc repro`: the teacher's answers come from the teacher run in-process on the pool (the same function as
the exported teacher.onnx, fp32), not through the query stage and the SQL store.

Runs: each (data seed, student seed) pair of RUNS varies one seed at a time, so the spread over data seeds
and over student seeds can be told apart; paired differences are taken over the same runs.
Rows are appended to results.csv as they finish, and results.md + the plot are rewritten every few rows, so
a timeout still returns every finished row.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from cifar10_report import FIELDS, write_report  # noqa: E402  (bench/cifar10/cifar10_report.py)

START = time.time()
TARS = (ROOT / ".cache" / "cifar10_jpg.tar.xz", ROOT.parent / "shared" / "data" / "cifar10_jpg.tar.xz")
LOG_FILE: Path | None = None

# (data seed, student seed): 5 data seeds at student seed 0, 3 student seeds at data seed 0
RUNS = [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (0, 1), (0, 2)]
# tier 1, every run first: the headline (default recipe vs augmented KD at N, 3N, 5N) and CKD vs its control
MAIN_VARIANTS = ["kd", "ckd", "ckd_control", "ckd_pool"]
# tier 2, after tier 1 of every run: the ceiling, then the other variants and controls
EXTRA_VARIANTS = ["ce", "kd_plain", "ckd_21", "ckd_21_control", "ckd_paper", "ckd_paper_control", "kd_pool"]
POOL_VARIANTS = ("ckd_pool", "kd_pool")  # need the free pool inputs (FixMatch)


def log(message: str) -> None:
    line = f"[{time.strftime('%H:%M:%S', time.gmtime())} +{time.time() - START:6.1f}s] {message}"
    print(line, flush=True)
    if LOG_FILE is not None:
        with open(LOG_FILE, "a") as handle:
            handle.write(line + "\n")


def unpack(tar_path: Path, target: Path, per_class: dict[str, int] | None) -> None:
    """train/ and test/ folders under `target`; `per_class` (smoke): only the first n images of each class."""
    done = target / ".unpacked"
    if done.is_file():
        return
    if not tar_path.is_file():
        raise SystemExit(f"bench/cifar10: error: {tar_path} not found; copy ../shared/data/cifar10_jpg.tar.xz there")
    target.mkdir(parents=True, exist_ok=True)
    if per_class is None and shutil.which("tar") and shutil.which("xz"):
        subprocess.run(["tar", "-xJf", str(tar_path), "-C", str(target)], check=True)
        done.write_text(str(tar_path))
        return
    counts: dict[tuple[str, str], int] = {}
    with tarfile.open(tar_path, "r:xz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3:
                continue
            key = (parts[0], parts[1])
            if per_class is not None and counts.get(key, 0) >= per_class[parts[0]]:
                continue
            counts[key] = counts.get(key, 0) + 1
            archive.extract(member, target, filter="data")
    done.write_text(str(tar_path))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny scale on the CPU: the same code path")
    p.add_argument(
        "--tar",
        default=str(next((t for t in TARS if t.is_file()), TARS[0])),
        help="the CIFAR-10 JPEG tarball (default: .cache/cifar10_jpg.tar.xz, else ../shared/data/)",
    )
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "bench_results" / "cifar10"))
    p.add_argument("--work", default=None, help="unpacked images and comparative sets (default .cache/cifar10[_smoke])")
    p.add_argument("--budgets-per-class", default="10,30,100")
    p.add_argument("--runs", type=int, default=len(RUNS), help="how many (data seed, student seed) runs of RUNS")
    p.add_argument("--variants", default=",".join(MAIN_VARIANTS), help="tier 1 (with KD at 3N, 5N), every run")
    p.add_argument(
        "--extra-variants",
        default=",".join(EXTRA_VARIANTS),
        help="tier 2 (after the ceiling), once tier 1 of every run is done",
    )
    p.add_argument(
        "--resume",
        default=None,
        help="a former run's folder: its teacher.pt is the teacher (no training) and its results.csv rows "
        "are kept and not run again",
    )
    p.add_argument(
        "--keep",
        default=None,
        help="also copy results.csv and teacher.pt here as they are written "
        "(a folder on the GPU machine that a later call can --resume from)",
    )
    p.add_argument("--steps", type=int, default=1000, help="student.steps")
    p.add_argument("--ceiling-steps", type=int, default=4000, help="student.steps of the full-pool ceiling")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--lr", default="0.003,0.001", help="student.lr grid")
    p.add_argument("--channels", default="32,64,128", help="the cnn student's channels")
    p.add_argument("--teacher-channels", default="64,128,256")
    p.add_argument("--teacher-epochs", type=int, default=10)
    p.add_argument("--dev-size", type=int, default=5000)
    p.add_argument("--workers", type=int, default=14)
    p.add_argument(
        "--deadline",
        type=float,
        default=480.0,
        help="seconds from start: runs not finished by then are abandoned, and the report is written",
    )
    p.add_argument("--device", default="cuda")
    if "--smoke" in (sys.argv[1:] if argv is None else argv):  # tiny defaults; options given still win
        p.set_defaults(
            device="cpu",
            steps=30,
            ceiling_steps=40,
            eval_every=10,
            budgets_per_class="2,5",
            runs=2,
            dev_size=100,
            workers=2,
            teacher_epochs=2,
            teacher_channels="8,16",
            channels="8,16",
            deadline=900.0,
            extra_variants="ce",
        )
    args = p.parse_args(argv)
    args.work = Path(args.work or ROOT / ".cache" / ("cifar10_smoke" if args.smoke else "cifar10"))
    args.out = Path(args.out)
    return args


TEACHER_CACHE = "models/cifar10/teacher.onnx"  # git-ignored; where `dvc repro` of a row finds the teacher


def base_overrides(args, train_dir: Path) -> dict:
    """What every row shares, as params.yaml overrides."""
    return {
        "data.source": str(train_dir.relative_to(ROOT)) if train_dir.is_relative_to(ROOT) else str(train_dir),
        "data.test_source": None,
        "data.test_size": args.dev_size,
        "data.split_seed": 0,
        "data.selection": "random",
        "teacher.kind": "onnx",
        "teacher.model": TEACHER_CACHE,
        "teacher.scores": "logits",
        "student.arch": "cnn",
        "student.arch_args": {"channels": [int(c) for c in args.channels.split(",")]},
        "student.steps": args.steps,
        "student.eval_every": args.eval_every,
        "student.lr": [float(v) for v in args.lr.split(",")],
        "student.batch_size": 64,
        "student.device": args.device,
        "student.threads": 1,
        "student.precision": "fp32",
    }


# ---------------------------------------------------------------- workers (one CUDA context each)
_WORKER: dict = {}


def _init_worker(eval_path: str, pool_path: str, device: str) -> None:
    import torch

    torch.set_num_threads(1)
    arrays = np.load(eval_path)
    _WORKER.update(
        device=device,
        pool=np.load(pool_path, mmap_mode="r"),
        eval={
            k: (torch.as_tensor(arrays[f"{k}_x"]).to(device), torch.as_tensor(arrays[f"{k}_y"]).to(device))
            for k in ("dev", "test")
        },
    )


def _warm_up() -> int:
    import ckd.stages.train  # noqa: F401  (imports torch and the package once, before the first row)

    time.sleep(1.0)  # hold this worker so that the next warm-up starts another
    return 1


def _accuracy(model, x, y) -> float:
    import torch

    with torch.no_grad():
        correct = sum(
            int((model(x[i : i + 2000].float()).argmax(-1) == y[i : i + 2000]).sum()) for i in range(0, len(x), 2000)
        )
    return correct / len(x)


def _train_job(job: dict) -> dict:
    """The package's `train` stage function on the row's comparative set, then dev and test accuracy."""
    from ckd.comparative import ComparativeSet, free_rows
    from ckd.config import validate_all
    from ckd.stages.train import train

    params = validate_all(job["params"])
    data = ComparativeSet.load(job["data"])
    if params.student.unlabelled_weight > 0:  # the free pool inputs, as `build` carries them
        data.unlabelled = np.asarray(
            _WORKER["pool"][free_rows(len(_WORKER["pool"]), job["rows"], params.seed)], np.float32
        )
    start = time.perf_counter()
    checkpoint, _, metrics = train(params.student, data, progress=False)
    seconds = time.perf_counter() - start
    model = checkpoint.model().to(_WORKER["device"])
    return {
        **job["row"],
        "student_seed": params.student.seed,
        "method": params.student.method,
        "dev_accuracy": _accuracy(model, *_WORKER["eval"]["dev"]),
        "test_accuracy": _accuracy(model, *_WORKER["eval"]["test"]),
        "val_accuracy": metrics["val_accuracy"],
        "chosen": json.dumps(checkpoint.chosen),
        "train_seconds": round(seconds, 2),
        "overrides": json.dumps(job["overrides"]),
    }


# ---------------------------------------------------------------- the data path (GPU step time)
def measure_datapath(data, device, steps: int, batch_size: int = 64, channels=(32, 64, 128)) -> dict:
    """Seconds per training step of the student with the package's data path (sample group ids, then gather by
    index + flip + crop on the device in one indexing step, `ShiftedGather`; ckd loss, Adam) against the same
    step on a batch built beforehand (pure compute), and the former path (index_select, then `random_shift`)."""
    import torch

    from ckd.augment import ShiftedGather, random_shift

    sys.path.insert(0, str(ROOT / "bench"))
    from datapath import measure  # bench/datapath.py (the data-path study's timer)

    from ckd.methods import build_method
    from ckd.students import build_student
    from ckd.train import BatchSampler, TrainingData

    training = TrainingData.from_set(data, device)
    method = build_method("ckd", training.num_classes, float(training.teacher.var()), True)
    model = build_student(
        "cnn", training.sample_shape, training.num_classes, data.norm_mean, data.norm_std, {"channels": list(channels)}
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator(device=device).manual_seed(0)
    sampler = BatchSampler(training, np.arange(len(training.x)), True, batch_size, generator)
    group = training.group_size

    shifted = ShiftedGather(training.x, 2, flip=True)

    def gather():
        rows = sampler.members()
        return shifted(rows, generator), training.teacher.index_select(0, rows), training.labels.index_select(0, rows)

    def gather_former():
        rows = sampler.members()
        x = random_shift(training.x.index_select(0, rows), 2, generator, flip=True)
        return x, training.teacher.index_select(0, rows), training.labels.index_select(0, rows)

    def step(x, t, y):
        loss = method.loss(model(x), t, y, group)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    fixed = gather()

    def timed(fn) -> float:
        return 1.0 / measure(fn, steps, 20, device)

    results: dict[str, list[float]] = {}
    for _ in range(3):  # interleaved repeats; the median of each
        results.setdefault("data_path", []).append(timed(lambda: step(*gather())))
        results.setdefault("pure_compute", []).append(timed(lambda: step(*fixed)))
        results.setdefault("data_path_former", []).append(timed(lambda: step(*gather_former())))
    real, pure = float(np.median(results["data_path"])), float(np.median(results["pure_compute"]))
    former = float(np.median(results["data_path_former"]))
    return {
        "device": str(device),
        "batch_groups": batch_size,
        "group_members": list(group),
        "steps": steps,
        "seconds_per_step_data_path": real,
        "seconds_per_step_pure_compute": pure,
        "ratio": real / pure,
        "seconds_per_step_former_data_path": former,
        "ratio_former": former / pure,
        "repeats": results,
    }


# ---------------------------------------------------------------- main
def main(argv=None) -> None:
    global LOG_FILE
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    LOG_FILE = args.out / "log.txt"
    LOG_FILE.write_text("")
    import torch

    from ckd.comparative import comparative_set
    from ckd.config import load_config, with_overrides
    from ckd.data import Pool, load_source, split_pool_test
    from ckd.export import export_onnx
    from ckd.students.base import build_student
    from ckd.students.resnet import predict_logits, train_classifier

    device = torch.device(args.device)
    log(
        f"cifar10 bench: device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}), "
        f"torch {torch.__version__}, smoke={args.smoke}"
    )
    unpack(Path(args.tar), args.work, {"train": 60, "test": 20} if args.smoke else None)
    train_dir, test_dir = args.work / "train", args.work / "test"
    teacher_path = args.out / "teacher.onnx"  # the lead copies it to TEACHER_CACHE, which the rows' overrides name
    base = with_overrides(load_config(ROOT / "params.yaml"), base_overrides(args, train_dir))
    train_set = load_source(str(train_dir), base.data)
    test_set = load_source(str(test_dir), base.data, parameter="data.test_source")
    assert train_set.y is not None and test_set.y is not None  # image folders: the folder names are the labels
    log(f"loaded train {train_set.x.shape} test {test_set.x.shape} (classes {', '.join(train_set.class_names)})")
    pool_ids, dev_ids = split_pool_test(len(train_set.x), args.dev_size, base.split_seed)
    statistics = _stats(train_set.x[pool_ids])  # the pool's input statistics, as `build` computes them (once here)

    # arrays the workers share; the workers start (import torch, open CUDA) while the teacher trains
    args.work.mkdir(parents=True, exist_ok=True)
    sets_dir = args.work / "sets"
    sets_dir.mkdir(exist_ok=True)
    pool = Pool(
        ids=pool_ids,
        x=train_set.x[pool_ids],
        class_names=train_set.class_names,
        is_image=True,
        labels=train_set.y[pool_ids],
    )
    np.save(args.work / "pool_x.npy", pool.x.astype(np.uint8))
    np.savez(
        args.work / "eval.npz",
        dev_x=train_set.x[dev_ids].astype(np.uint8),
        dev_y=train_set.y[dev_ids],
        test_x=test_set.x.astype(np.uint8),
        test_y=test_set.y,
    )
    executor = ProcessPoolExecutor(
        max_workers=args.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(str(args.work / "eval.npz"), str(args.work / "pool_x.npy"), args.device),
    )
    warm = [executor.submit(_warm_up) for _ in range(args.workers)]

    # teacher: trained once on all of train/ (flip + crop, bf16, one-cycle SGD); exported to ONNX
    torch.manual_seed(0)
    teacher = build_student(
        "resnet",
        train_set.sample_shape,
        train_set.num_classes,
        statistics[0],
        statistics[1],
        {"channels": [int(c) for c in args.teacher_channels.split(",")]},
    ).to(device)
    if device.type == "cuda":
        teacher = teacher.to(memory_format=torch.channels_last)
    resumed = Path(args.resume) / "teacher.pt" if args.resume else None
    if resumed is not None and resumed.is_file():  # the former run's teacher: the rows stay comparable
        teacher.load_state_dict(torch.load(resumed, map_location=device, weights_only=True))
        log(f"teacher loaded from {resumed} (not trained again)")
    else:
        images = torch.as_tensor(train_set.x.astype(np.uint8)).to(device)
        train_classifier(
            teacher,
            images,
            torch.as_tensor(train_set.y).to(device),
            args.teacher_epochs,
            batch_size=512 if not args.smoke else 64,
            lr=0.2 if not args.smoke else 0.05,
            precision="bf16" if device.type == "cuda" else "fp32",
            log=log,
        )
        del images
    teacher = teacher.float()
    torch.save(teacher.state_dict(), args.out / "teacher.pt")  # weights only (a --resume reads them back)
    pool_logits = predict_logits(teacher, torch.as_tensor(train_set.x[pool_ids]).to(device))
    dev_logits = predict_logits(teacher, torch.as_tensor(train_set.x[dev_ids]).to(device))
    test_logits = predict_logits(teacher, torch.as_tensor(test_set.x).to(device))
    teacher_accuracy = {
        "pool": float((pool_logits.argmax(1) == train_set.y[pool_ids]).mean()),
        "dev": float((dev_logits.argmax(1) == train_set.y[dev_ids]).mean()),
        "test": float((test_logits.argmax(1) == test_set.y).mean()),
    }
    log(f"teacher accuracy: {teacher_accuracy}")
    onnx_diff = None
    try:  # the students need the teacher's answers, not the file: a failed export is reported, the run goes on
        export_onnx(
            teacher,
            train_set.sample_shape,
            teacher_path,
            opset=17,
            metadata={"class_names": list(train_set.class_names)},
        )
        onnx_diff = _onnx_check(teacher_path, test_set.x[:256], test_logits[:256])
        log(
            f"teacher exported to {teacher_path} ({teacher_path.stat().st_size / 1e6:.1f} MB); "
            f"ONNX vs torch max |diff| on 256 test images: {onnx_diff:.2e}"
        )
    except Exception as error:
        log(f"teacher export failed: {error!r}")

    budgets = [int(v) * train_set.num_classes for v in args.budgets_per_class.split(",")]
    variants = args.variants.split(",")
    extra = [v for v in args.extra_variants.split(",") if v]
    common = base_overrides(args, train_dir)
    jobs = plan_jobs(args, budgets, variants, extra, common, len(pool_ids))
    previous = _previous_rows(args.resume)
    jobs = [
        job for job in jobs if _key(job["row"] | {"student_seed": job["params"]["student"]["seed"]}) not in previous
    ]
    log(
        f"{len(jobs)} student runs planned ({len(previous)} kept from {args.resume}): budgets {budgets}, "
        f"runs {RUNS[: args.runs]}, variants {variants} then the ceiling and {extra}"
    )

    # the GPU data path, before the students take the GPU
    datapath = None
    probe_rows = np.sort(np.random.default_rng(0).choice(len(pool_ids), min(1000, len(pool_ids)), replace=False))
    probe = comparative_set(
        pool_ids[probe_rows],
        pool_logits[probe_rows],
        pool,
        "logits",
        1,
        20000,
        0,
        statistics=statistics,
        unlabelled=False,
    )
    try:
        datapath = measure_datapath(
            probe, device, steps=200 if not args.smoke else 5, channels=[int(c) for c in args.channels.split(",")]
        )
        log(
            f"data path: {datapath['seconds_per_step_data_path'] * 1e3:.2f} ms/step vs pure compute "
            f"{datapath['seconds_per_step_pure_compute'] * 1e3:.2f} ms/step: ratio {datapath['ratio']:.3f} "
            f"(the former path, index_select + random_shift: {datapath['ratio_former']:.3f})"
        )
    except Exception as error:  # a measurement, not the benchmark: report and go on
        log(f"data path measurement failed: {error!r}")

    info = {
        "teacher_accuracy": teacher_accuracy,
        "teacher_onnx_max_abs_diff": onnx_diff,
        "datapath": datapath,
        "pool": len(pool_ids),
        "dev": len(dev_ids),
        "test": len(test_set.x),
        "budgets": budgets,
        "runs": RUNS[: args.runs],
        "variants": variants + extra,
        "common_overrides": common,
        "smoke": args.smoke,
        "teacher": {"arch": "resnet", "channels": args.teacher_channels, "epochs": args.teacher_epochs},
        "command": " ".join(sys.argv),
    }
    (args.out / "info.json").write_text(json.dumps(info, indent=2, default=str))

    results_path = args.out / "results.csv"
    log(f"workers ready: {sum(f.result() for f in warm)} of {args.workers}")
    done = run_jobs(
        args, executor, jobs, info, pool, pool_logits, statistics, sets_dir, results_path, list(previous.values())
    )
    write_report(done, info, args.out)
    log(
        f"done: {len(done) - len(previous)} of {len(jobs)} runs (+{len(previous)} kept);"
        f" wrote {results_path}, results.md, accuracy_vs_calls.png"
    )
    if len(done) < len(jobs):
        sys.stdout.flush()
        os._exit(0)  # never wait on a worker killed at the deadline


def _key(row: dict) -> tuple:
    return (row["variant"], int(row["budget"]), int(row["seed"]), int(row["student_seed"]))


def _previous_rows(folder: str | None) -> dict[tuple, dict]:
    """A former run's finished rows (--resume), by (variant, budget, data seed, student seed)."""
    path = Path(folder) / "results.csv" if folder else None
    if path is None or not path.is_file():
        return {}
    rows = {}
    for row in csv.DictReader(open(path, newline="")):
        for name in ("dev_accuracy", "test_accuracy", "val_accuracy", "train_seconds"):
            row[name] = float(row[name])
        rows[_key(row)] = row
    return rows


def run_jobs(
    args, executor, jobs, info, pool, pool_logits, statistics, sets_dir: Path, results_path: Path, previous: list[dict]
):
    """Train the rows in `args.workers` processes (spawned: one CUDA context each), appending each finished row to
    results.csv (after the `previous` rows kept from --resume); at the deadline, what is still running is
    abandoned (its worker killed)."""
    done: list[dict] = list(previous)
    keep = Path(args.keep) if args.keep else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(args.out / "teacher.pt", keep / "teacher.pt")
    pending: set = set()
    built: dict = {}
    queue = list(jobs)
    with open(results_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(previous)
        handle.flush()
        while queue or pending:
            left = args.deadline - (time.time() - START)
            while queue and len(pending) < 2 * args.workers and left > 20:  # keep the workers fed
                job = queue.pop(0)
                job["data"], job["rows"] = build_set(job, built, pool, pool_logits, statistics, sets_dir)
                pending.add(executor.submit(_train_job, job))
            if left <= 20 and queue:
                log(f"deadline near: {len(queue)} runs not started")
                queue.clear()
            if not pending:
                break
            finished, pending = wait(pending, timeout=max(0.5, left), return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    row = future.result()
                except Exception as error:  # one failed row is reported, the rest go on
                    log(f"run failed: {error!r}")
                    continue
                writer.writerow(row)
                handle.flush()
                if keep is not None:
                    shutil.copy(results_path, keep / "results.csv")
                done.append(row)
                log(
                    f"{len(done) - len(previous)}/{len(jobs)} {row['variant']} N={row['budget']} run={row['seed']}/"
                    f"{row['student_seed']}: dev {row['dev_accuracy']:.3f} test {row['test_accuracy']:.3f} "
                    f"({row['train_seconds']:.0f} s)"
                )
                if len(done) % 20 == 0:
                    write_report(done, info, args.out)
            if time.time() - START > args.deadline and pending:
                log(f"deadline: {len(pending)} runs in flight abandoned")
                for process in list((getattr(executor, "_processes", None) or {}).values()):
                    process.kill()
                break
    executor.shutdown(wait=False, cancel_futures=True)
    return done


def _stats(x: np.ndarray):
    from ckd.data.arrays import input_statistics

    return input_statistics(x)


def _onnx_check(path: Path, x: np.ndarray, expected: np.ndarray) -> float:
    from ckd.validate import onnx_logits

    return float(np.abs(onnx_logits(path, x.astype(np.float32)) - expected).max())


def plan_jobs(
    args, budgets: list[int], variants: list[str], extra: list[str], common: dict, pool_size: int
) -> list[dict]:
    """Every run, most important first and run-major within a tier, so a timeout leaves whole tables at fewer
    runs: tier 1 (`variants` and KD at 3N, 5N) of every run, then the ceiling and the `extra` variants."""
    from bench.recipes import RECIPES
    from bench.run import variant_overrides
    from ckd.config import load_config, with_overrides

    base = load_config(ROOT / "params.yaml")
    tier1 = [(variant, budget) for budget in budgets for variant in variants]
    tier1 += [("kd", m * budget) for budget in budgets for m in (3, 5) if m * budget not in budgets]
    tier2 = [("ceiling", pool_size)] + [(variant, budget) for variant in extra for budget in budgets]
    order = [
        (tier, cell, run)
        for tier, cells in enumerate((tier1, tier2))
        for run in RUNS[: args.runs]
        for cell in sorted(dict.fromkeys(cells), key=lambda c: _priority(c, variants + extra, budgets))
    ]
    jobs = []
    for _, (variant, budget), (data_seed, student_seed) in order:
        budget = min(budget, pool_size)
        recipe_name = "kd" if variant == "ceiling" else variant
        overrides = {
            **common,
            "teacher.budget": budget,
            "seed": data_seed,
            "student.seed": student_seed,
            "data.use_labels": True,
            "teacher.store": f"teacher_outputs/cifar10/n{budget}-s{data_seed}",
            **variant_overrides(recipe_name, {}, None),
        }
        if RECIPES[recipe_name].augment != "none":
            overrides["student.augment"] = "shift_flip"  # flip + random crop (2 px), the paper's augmentation
        if variant == "ceiling":  # 45,000 inputs: longer, one candidate (lr 0.003, T = 4) to fit the time
            overrides.update(
                {
                    "student.steps": args.ceiling_steps,
                    "student.lr": [0.003],
                    "student.method_args": {"temperature": 4.0},
                }
            )
        params = with_overrides(base, overrides)
        jobs.append(
            {
                "row": {
                    "dataset": "cifar10",
                    "regime": "labelled",
                    "budget": budget,
                    "seed": data_seed,
                    "variant": variant,
                    "teacher_calls": budget,
                },
                "overrides": overrides,
                "params": params.as_dict(),
            }
        )
    return jobs


def _priority(cell, variants, budgets):
    variant, budget = cell
    if variant == "ceiling":
        return (-1, 0, budget)
    if variant in variants:
        return (0, variants.index(variant), budget)
    return (1 if variant == "kd" else 2, 0, budget)


def build_set(job: dict, built: dict, pool, pool_logits, statistics, sets_dir: Path) -> tuple[str, np.ndarray]:
    """The `sample` selection and the `build` stage's comparative set for the row's (budget, seed, groups),
    with the teacher's in-process answers; the free pool inputs are attached in the worker (they are large)."""
    from ckd.comparative import comparative_set
    from ckd.data import select_for_teacher

    params = job["params"]
    key = (
        params["teacher"]["budget"],
        params["seed"],
        params["comparative"]["group_size"],
        params["comparative"]["negatives"],
    )
    if key not in built:
        ids = select_for_teacher(pool.ids, pool.x, key[0], params["data"]["selection"], params["seed"])
        rows = pool.rows(ids)
        data = comparative_set(
            ids,
            pool_logits[rows],
            pool,
            "logits",
            key[2],
            params["comparative"]["max_groups"],
            params["seed"],
            key[3],
            statistics=statistics,
            unlabelled=False,
        )
        path = sets_dir / f"n{key[0]}-s{key[1]}-g{key[2]}x{key[3]}.npz"
        data.save(path)
        built[key] = (str(path), rows)
    return built[key]


if __name__ == "__main__":
    main()
