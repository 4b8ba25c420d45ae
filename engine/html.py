"""Static HTML pages of result images: the training page (web/index.html) and test.py's results.

A page is built with dominate, which escapes all text; image and link addresses are URL-quoted so
that file names with spaces, '#', '&', '<' or non-ASCII letters still resolve. Pages never reload
themselves: the reader refreshes when they want to. `result_names` gives every test input its own
result files, even when several inputs share a file name.
"""
import os
from collections import Counter
from pathlib import PurePath
from urllib.parse import quote

import dominate
from dominate.tags import a, b, div, h3, img, meta, p, span, table, td, tr

from util.util import mkdirs, save_image, tensor2deep, tensor2im

IMAGE_FOLDER = "images"


def url_of(path_rel):
    """Turn a path relative to the page into an address a browser resolves to that same file."""
    return quote(PurePath(path_rel).as_posix(), safe="/")


class HTML:
    """One HTML page in `web_dir`, with its pictures in `web_dir/images/`.

    web_dir: folder that holds the page and its `images/` folder (both are created).
    title: the page's title (shown in the browser tab).
    """

    def __init__(self, web_dir, title):
        self.web_dir = str(web_dir)
        self.image_dir = os.path.join(self.web_dir, IMAGE_FOLDER)
        mkdirs(self.web_dir, self.image_dir)
        self.doc = dominate.document(title=title)
        with self.doc.head:
            meta(charset="utf-8")

    def add_header(self, text):
        """Add a section heading. text: the heading's text."""
        with self.doc:
            h3(text)

    def add_text(self, text):
        """Add a paragraph. text: the paragraph's text."""
        with self.doc:
            p(text)

    def add_links(self, targets, current=None):
        """Add one line of links to other pages (nothing for fewer than two).

        targets: list of (path relative to the page's folder, link text).
        current: the path of this page, shown as plain text instead of a link.
        """
        if len(targets) < 2:
            return
        with self.doc:
            with p():
                for index, (path_rel, text) in enumerate(targets):
                    if index:
                        span(" | ")
                    if path_rel == current:
                        b(text)
                    else:
                        a(text, href=url_of(path_rel))

    def add_image(self, path_rel, caption=None, width=None):
        """Add one picture on its own line.

        path_rel: the picture's path relative to the page's folder.
        caption: optional text under the picture.
        width: optional display width in pixels (the picture's own size otherwise).
        """
        style = f"width:{int(width)}px" if width else None
        with self.doc:
            with div():
                img(src=url_of(path_rel), style=style, alt=caption or "")
                if caption:
                    p(caption)

    def add_images(self, image_rel_paths, captions, links, width=256):
        """Add one table row of pictures, each with a caption and a link.

        image_rel_paths: the pictures' paths relative to the page's folder.
        captions: one text per picture, shown under it.
        links: one path (relative to the page's folder) per picture that a click opens.
        width: display width of each picture in pixels.
        """
        with self.doc:
            with table(border=1, style="table-layout: fixed;"):
                with tr():
                    for path_rel, caption, link in zip(image_rel_paths, captions, links):
                        with td(style="word-wrap: break-word;", halign="center", valign="top"):
                            with a(href=url_of(link)):
                                img(style=f"width:{int(width)}px", src=url_of(path_rel),
                                    alt=caption)
                            p(caption)

    def save(self, filename="index.html"):
        """Write the page to `web_dir/filename` (UTF-8); return the file's path."""
        page_path = os.path.join(self.web_dir, filename)
        with open(page_path, "w", encoding="utf-8") as page:
            page.write(self.doc.render())
        return page_path


def result_names(folders):
    """{image path: name of its results}: each file's stem (`x` for x.png, giving x_fake_B.png, ...),
    unless that would give two files of one folder the same results. Such files are named by their
    path below the folder, '_' standing for '/' (x.png and sub/x.png: x and sub_x), and with their
    extension when that is not enough (x.png and x.jpg: x_png and x_jpg). Names are compared ignoring
    case, as on case-insensitive file systems; a name still taken gets _2, _3, ... in file order.
    Decided for whole folders, the names do not depend on the order or batches in which files come.

    folders: {folder: [image paths under it]}, e.g. a dataset's `folders`.
    """
    names = {}
    for folder, paths in folders.items():
        stems = {path: _stem(path) for path in paths}
        stem_counts = Counter(stem.casefold() for stem in stems.values())
        chosen = {path: stem for path, stem in stems.items() if stem_counts[stem.casefold()] == 1}
        longer = {path: _longer_names(folder, path) for path in paths if path not in chosen}
        longer_counts = Counter(without.casefold() for without, _ in longer.values())
        for path, (without, with_extension) in longer.items():
            chosen[path] = without if longer_counts[without.casefold()] == 1 else with_extension
        names.update(_make_unique(paths, chosen))
    return names


def _stem(path):
    """A file's name without folder and extension."""
    return os.path.splitext(os.path.basename(os.fspath(path)))[0]


def _longer_names(folder, path):
    """(path below `folder` without its extension, then with it), '/' and the extension's dot as '_'."""
    relative, extension = os.path.splitext(os.path.relpath(os.fspath(path), os.fspath(folder)))
    flat = relative.replace(os.sep, "_").replace("/", "_")
    return flat, f"{flat}_{extension.lstrip('.')}"


def _make_unique(paths, chosen):
    """`chosen` ({path: name}) with _2, _3, ... added to names taken already (ignoring case); files whose
    plain stem was kept come first, so that they never change."""
    taken = set()
    unique = {}
    kept_first = sorted(paths, key=lambda path: chosen[path] != _stem(path))
    for path in kept_first:
        name, number = chosen[path], 1
        while (name if number == 1 else f"{name}_{number}").casefold() in taken:
            number += 1
        unique[path] = name if number == 1 else f"{name}_{number}"
        taken.add(unique[path].casefold())
    return unique


def result_row(name, labels):
    """The page row of one test image's results: (name, image paths relative to the page, labels), the
    files `write_result_images` writes for it (known before they are written).

    name: what names the outputs (see result_names); labels: the visuals' labels, in page order.
    """
    return name, [f"{IMAGE_FOLDER}/{_result_file(name, label)}" for label in labels], list(labels)


def _result_file(name, label):
    """The file name of one result picture: <name>_<label>.png."""
    return f"{name}_{label}.png"


def write_result_images(image_dir, visuals, image_path, aspect_ratio=1.0, name=None, bits=8):
    """Save one test image's visuals as `<image_dir>/<name>_<label>.png`; return its page row.

    visuals: dict label -> tensor (C, H, W) or (1, C, H, W) in [-1, 1] for one source image.
    image_path: path of the source image.
    aspect_ratio: width/height factor applied when saving (test.py's --aspect_ratio).
    name: what names the outputs (default: the source's file name without extension; see result_names).
    bits: 8 (RGB PNGs, one-channel visuals repeated to three) or 16 (16-bit PNGs with the visual's own
    1 or 3 channels; test.py's --output_bits).
    Returns (name, image paths relative to the page, labels), what `add_result_row` shows.
    """
    name = name or _stem(image_path)
    to_picture = tensor2deep if bits == 16 else tensor2im
    for label, tensor in visuals.items():
        save_image(to_picture(tensor), os.path.join(image_dir, _result_file(name, label)), aspect_ratio=aspect_ratio)
    return result_row(name, visuals)


def add_result_row(webpage, row, width=256):
    """Add a row from `write_result_images` to `webpage`: a header with the name, then the pictures.
    width: display width of each picture on the page, in pixels."""
    name, rel_paths, labels = row
    webpage.add_header(name)
    webpage.add_images(rel_paths, labels, rel_paths, width=width)


def save_result_images(webpage, visuals, image_path, aspect_ratio=1.0, width=256):
    """Save one test image's visuals and add them to `webpage` as one row (see write_result_images).
    Returns the paths of the written files."""
    row = write_result_images(webpage.image_dir, visuals, image_path, aspect_ratio)
    add_result_row(webpage, row, width)
    return [os.path.join(webpage.web_dir, rel_path) for rel_path in row[1]]
