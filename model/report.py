"""Write a run's tables: a new folder per run, built under a temporary name and
renamed when complete. Reads result tables only, never the model."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

# Units shown in report headers, by column-name suffix.
_FORMATS = {"_usd": "#,##0", "_usd_per_t": "#,##0.00", "_share": "0.0%", "utilisation": "0.0%",
            "_t_per_yr": "#,##0.00", "_t": "#,##0.00"}


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("pyomo", "highspy", "pandas", "numpy", "openpyxl", "xlsxwriter", "rare-earth-model"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "case"


def new_run_dir(out_root: Path, case_name: str, scenario: str | None) -> tuple[Path, Path]:
    """(temporary folder to write in, final name not yet taken)."""
    out_root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}_{_slug(case_name)}" + (f"_{_slug(scenario)}" if scenario else "")
    final = out_root / base
    n = 1
    while final.exists():
        n += 1
        final = out_root / f"{base}_{n}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{base}_", dir=out_root))
    return tmp, final


def _number_format(col: str) -> str | None:
    for suffix, fmt in _FORMATS.items():
        if col.endswith(suffix):
            return fmt
    return None


def write_xlsx(path: Path, tables: dict[str, pd.DataFrame]) -> None:
    """One sheet per table: frozen header, filters, widths, number formats. Text
    that looks like a formula is written as text."""
    with pd.ExcelWriter(path, engine="xlsxwriter",
                        engine_kwargs={"options": {"strings_to_formulas": False,
                                                   "strings_to_urls": False}}) as xw:
        book = xw.book
        head = book.add_format({"bold": True, "bg_color": "#DDE6F0", "border": 1, "text_wrap": True})
        for name, df in tables.items():
            sheet_name = name[:31]
            df.to_excel(xw, sheet_name=sheet_name, index=False)
            ws = xw.sheets[sheet_name]
            ws.freeze_panes(1, 0)
            if len(df.columns):
                ws.autofilter(0, 0, max(len(df), 1), len(df.columns) - 1)
            for j, col in enumerate(df.columns):
                ws.write(0, j, col, head)
                lengths = [len(str(v)) for v in df[col].head(200)]
                width = min(max([len(str(col))] + lengths) + 2, 60)
                fmt = _number_format(str(col))
                ws.set_column(j, j, width, book.add_format({"num_format": fmt}) if fmt else None)


def write_run(result, out_root: str | Path = "outputs", extra: dict | None = None) -> Path:
    """Write report.xlsx, one CSV per table and manifest.json into a new folder."""
    out_root = Path(out_root)
    tmp, final = new_run_dir(out_root, result.case.name, result.scenario)
    try:
        tables = result.tables
        for name, df in tables.items():
            df.to_csv(tmp / f"{name}.csv", index=False)
        if tables:
            write_xlsx(tmp / "report.xlsx", tables)
        manifest = {
            "case": result.case.path,
            "input_sha256": result.case.input_hash,
            "scenario": result.scenario,
            "status": result.solve.status,
            "status_message": result.solve.message,
            "objective_usd": result.solve.objective if result.optimal else None,
            "seconds": result.seconds,
            "solver": {k: v for k, v in result.solve.stats.items() if not k.endswith("_s")},
            "package_versions": package_versions(),
            "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tables": sorted(tables),
        }
        if extra:
            manifest.update(extra)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
