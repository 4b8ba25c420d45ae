"""The benchmark's outputs: the markdown table, the JSON file and one picture per task (rows = test
images; columns = input, truth and each configuration's output, labelled)."""
import json
import os

from PIL import Image, ImageDraw, ImageFont

BASELINE = "do nothing"  # the row and column of the input returned unchanged
# (heading, row key, format) of the table's number columns
COLUMNS = (("PSNR dB", "psnr", "{:.2f}"), ("vs input dB", "psnr_gain", "{:+.2f}"), ("SSIM", "ssim", "{:.3f}"),
           ("FID", "fid", "{:.1f}"), ("KID", "kid", "{:.4f}"), ("s/iter", "seconds_per_iter", "{:.3f}"),
           ("images", "images", "{:d}"))
CELL_SIDE = 128  # pictures are enlarged (nearest neighbour, so artefacts stay visible) to about this side
FONT_SIZE = 13
PAD = 4
HEADER = 2 * (FONT_SIZE + PAD) + PAD  # two label lines above every column


def baseline_row(task, scores):
    """The table row of returning the input unchanged on `task` (scores: psnr, ssim, fid, kid)."""
    return {"task": task, "config": BASELINE, "flags": None, "status": "ok", "baseline": True, **scores}


def add_gains(rows):
    """Give every row its PSNR gain over its task's do-nothing baseline (psnr_gain, in dB)."""
    baseline = {row["task"]: row["psnr"] for row in rows if row.get("baseline")}
    for row in rows:
        if row.get("psnr") is not None and not row.get("baseline"):
            row["psnr_gain"] = row["psnr"] - baseline[row["task"]]


def cell(row, key, form):
    """One table cell: the formatted number, 'failed' or '-'."""
    if row["status"] != "ok":
        return "failed" if key == "psnr" else "-"
    value = row.get(key)
    return "-" if value is None else form.format(value)


def markdown_table(rows):
    """The results as one markdown table: a row per task and configuration, baselines first."""
    headings = ["task", "configuration", *(heading for heading, _, _ in COLUMNS)]
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    for row in rows:
        cells = [row["task"], row["config"], *(cell(row, key, form) for _, key, form in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_json(path, settings, rows):
    """Write the settings and every row to `path` as one JSON object."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"settings": settings, "rows": rows}, handle, indent=2)
        handle.write("\n")


def column_pictures(task_folder, rows):
    """[(label lines, {file name: picture or None})] of a task's picture: input, truth, then each run."""
    names = sorted(os.listdir(os.path.join(task_folder, "testA")))
    baseline = next(row for row in rows if row.get("baseline"))
    columns = [((f"input ({BASELINE})", f"PSNR {baseline['psnr']:.2f} dB"),
                {name: os.path.join(task_folder, "testA", name) for name in names}),
               (("truth", "(testB)"), {name: os.path.join(task_folder, "testB", name) for name in names})]
    for row in rows:
        if row.get("baseline"):
            continue
        if row["status"] != "ok":
            columns.append(((row["config"], "failed"), dict.fromkeys(names)))
            continue
        outputs = {name: os.path.join(row["images_folder"], f"{os.path.splitext(name)[0]}_fake_B.png")
                   for name in names}
        score = "PSNR -" if row.get("psnr") is None else f"PSNR {row['psnr']:.2f} dB"
        columns.append(((row["config"], score), outputs))
    return columns, names


def draw_task_picture(path, task_folder, rows, count):
    """Write the picture of one task to `path`: the first `count` test images (rows), each column
    labelled with its name and mean PSNR over all test images (dB).

    task_folder: the task's dataset; rows: the task's table rows (its baseline and its runs)."""
    columns, names = column_pictures(task_folder, rows)
    names = names[:count]
    side = Image.open(columns[0][1][names[0]]).width
    shown = side * max(1, round(CELL_SIDE / side))
    font = ImageFont.load_default(size=FONT_SIZE)
    width = max([shown] + [int(font.getlength(line)) for label, _ in columns for line in label]) + 2 * PAD
    canvas = Image.new("RGB", (width * len(columns), HEADER + len(names) * (shown + PAD)), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (label, pictures) in enumerate(columns):
        left = index * width
        for line_index, line in enumerate(label):
            draw.text((left + PAD, PAD + line_index * (FONT_SIZE + PAD)), line, fill="black", font=font)
        for row_index, name in enumerate(names):
            top = HEADER + row_index * (shown + PAD)
            box = (left + (width - shown) // 2, top)
            if pictures[name] is None:
                draw.rectangle((*box, box[0] + shown - 1, top + shown - 1), fill=(200, 200, 200))
            else:
                canvas.paste(Image.open(pictures[name]).convert("RGB").resize((shown, shown), Image.NEAREST), box)
    canvas.save(path)
