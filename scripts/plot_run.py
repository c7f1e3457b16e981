#!/usr/bin/env python3
"""Renders a training-lab run folder's headline plot as a PNG with gnuplot (gnuplot-nox),
for the README: python3 scripts/plot_run.py RUN_DIR OUT.png

Reads RUN_DIR/config.json, metrics.sqlite (training metrics and analyses) and, for
superposition, the last checkpoint's W. Needs only Python's standard library and gnuplot.
"""
import json
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile


def series(db, name, table="metrics"):
    col = "step" if table == "metrics" else "checkpoint"
    return db.execute(f"SELECT {col}, value FROM {table} WHERE name = ? AND value IS NOT NULL ORDER BY {col}",
                      (name,)).fetchall()


def smooth(s, w):
    out, acc = [], 0.0
    for i, (x, v) in enumerate(s):
        acc += v
        if i >= w:
            acc -= s[i - w][1]
        if i + 1 >= w:
            out.append((x, acc / w))
    return out


def write(tmp, name, s):
    path = os.path.join(tmp, name + ".dat")
    with open(path, "w") as f:
        for x, v in s:
            f.write(f"{x} {v}\n")
    return path


def read_safetensors(path, key):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        e = header[key]
        f.seek(8 + n + e["data_offsets"][0])
        raw = f.read(e["data_offsets"][1] - e["data_offsets"][0])
    vals = struct.unpack(f"<{len(raw) // 4}f", raw)
    return e["shape"], vals


def main():
    run, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(run, "config.json")))
    db = sqlite3.connect(os.path.join(run, "metrics.sqlite"))
    recipe = cfg["recipe"]
    tmp = tempfile.mkdtemp()
    gp = [f"set terminal pngcairo noenhanced size 900,420 font 'sans,10'", f"set output '{out}'",
          "set key outside right", "set grid", "set format y '%g'"]
    plots = []
    if recipe == "grokking":
        gp += ["set logscale y", "set xlabel 'epoch'", "set ylabel 'loss'",
               f"set title 'Grokking, p = {cfg['p']}, frac_train {cfg['frac_train']}, seed {cfg['seed']}'"]
        for label, name, table in [("train", "train_loss", "metrics"), ("test", "test_loss", "metrics"),
                                   ("restricted", "grokking.restricted_loss", "analysis"),
                                   ("excluded", "grokking.excluded_loss", "analysis")]:
            plots.append(f"'{write(tmp, name, series(db, name, table))}' with lines lw 2 title '{label}'")
    elif recipe == "induction" or recipe == "lm":
        gp += ["set xlabel 'step'", "set ylabel 'loss (nats)'"]
        title = (f"Induction, {cfg['layers']}-layer attention-only" if recipe == "induction"
                 else f"Toy LM on {cfg['corpus']}, {cfg['layers']} layer(s){' attention-only' if cfg['attn_only'] else ''}")
        gp.append(f"set title '{title}'")
        plots.append(f"'{write(tmp, 'loss', smooth(series(db, 'train_loss'), 25))}' with lines lw 2 title 'train (25-step mean)'")
        if recipe == "lm":
            plots.append(f"'{write(tmp, 'held', series(db, 'heldout_loss'))}' with linespoints lw 2 title 'held-out'")
            summ = json.load(open(os.path.join(run, "summary.json")))
            plots.append(f"{summ['bigram_loss']} with lines dt 2 lw 2 title 'bigram'")
            plots.append(f"{summ['unigram_loss']} with lines dt 3 lw 2 title 'unigram'")
        gp.append("set y2tics; set y2label 'head score'; set y2range [0:1]")
        pref = "induction." if recipe == "induction" else "lm."
        last = cfg["layers"] - 1
        plots.append(f"'{write(tmp, 'ind', series(db, pref + 'induction_best_L' + str(last), 'analysis'))}' axes x1y2 "
                     f"with linespoints title 'best L{last} induction score'")
        plots.append(f"'{write(tmp, 'prev', series(db, pref + 'prev_token_best_L0', 'analysis'))}' axes x1y2 "
                     f"with linespoints title 'best L0 previous-token score'")
    elif recipe == "addition":
        gp += ["set logscale y", "set xlabel 'step'", "set ylabel 'loss (25-step mean)'",
               f"set title '{cfg['digits']}-digit addition: loss per answer digit'"]
        for i in range(cfg["digits"] + 1):
            n = f"c{cfg['digits'] - i}"
            plots.append(f"'{write(tmp, n, smooth(series(db, 'loss_' + n), 25))}' with lines lw 2 title '{n}'")
    elif recipe == "superposition":
        ck = sorted(os.listdir(os.path.join(run, "checkpoints")))[-1]
        shape, W = read_safetensors(os.path.join(run, "checkpoints", ck, "superposition.safetensors"), "W")
        I, F, H = shape
        if H != 2:
            sys.exit("plot_run.py: superposition plots need hidden = 2")
        per = cfg["instances"]
        rows = list(range(0, I, per))  # the first instance of each sparsity
        summ = json.load(open(os.path.join(run, "summary.json")))
        gp += [f"set terminal pngcairo noenhanced size {170 * len(rows)},220 font 'sans,9'", f"set output '{out}'",
               f"set multiplot layout 1,{len(rows)} title 'Feature directions W_i (5 features, 2 dimensions), one instance per sparsity'",
               "unset key", "set size ratio -1", "set xrange [-1.3:1.3]", "set yrange [-1.3:1.3]", "unset tics",
               "unset grid", "unset border"]
        for r in rows:
            path = os.path.join(tmp, f"w{r}.dat")
            with open(path, "w") as f:
                for j in range(F):
                    f.write(f"0 0 {W[(r * F + j) * 2]} {W[(r * F + j) * 2 + 1]} {j}\n")
            inst = summ["instances"][r]
            gp.append(f"set title 'S = {inst['sparsity']:g}: {inst['geometry']}'")
            gp.append(f"plot '{path}' using 1:2:3:4:5 with vectors lw 3 lc variable")
        gp.append("unset multiplot")
        subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", text=True, check=True)
        return
    else:
        sys.exit(f"plot_run.py: unknown recipe {recipe}")
    gp.append("plot " + ", ".join(plots))
    subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", text=True, check=True)


if __name__ == "__main__":
    main()
