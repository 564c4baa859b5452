"""All restart state of a run directory, in one place: what is there, what may be reused, what is left to do.

The state lives in files, and only this module reads them to decide (hats-import keeps the
same facts in its ``ResumePlan``):

- ``candidates/hats.properties``: a finished candidate catalogue (written last);
- ``work/detections/done/run.json`` and ``done/<order>_<tile>_done``: an interrupted run's
  settings and the tiles it finished (``survey.output.store.CatalogWriter``); ``scores/``
  the same for ``--all-scores``;
- ``manifest.json``: the report, whose run ids a resumed run carries on.

The rules, checked by ``ResumePlan.prepare`` before any compute and acted on by ``open``:

- no flag: an output holding another run's catalogue is refused;
- ``--overwrite``: our old catalogues are deleted; a directory that holds files but no
  halo-survey catalogue is refused, never deleted;
- ``--resume``: finished tiles are kept (the writers check that the settings are the
  same) and only the others are done; a run that already finished with the same settings
  has nothing to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from hats.io.file_io import remove_directory
from upath import UPath

from survey.exceptions import BadInputError
from survey.output import paths
from survey.output.store import (
    SCRATCH_COMPRESSION_LEVEL,
    CatalogWriter,
    check_same_settings,
    check_writable,
    is_halo_catalog,
)
from survey.run.arguments import SurveyArguments
from survey.run.manifest import RunManifest, read_manifest
from survey.run.plan import WorkPlan

WORK_CATALOG_NAME = "gleam_halo_detections"
"""``obs_collection`` of the per-tile detections catalogue."""


@dataclass
class Outputs:
    """The catalogues a run writes into.

    Attributes
    ----------
    root : UPath
        ``--output``.
    work : CatalogWriter
        Per-tile detections (scan) or target rows, merged into ``candidates`` at the end.
    scores : CatalogWriter or None
        Every window's score (``--all-scores``).
    """

    root: UPath
    work: CatalogWriter
    scores: CatalogWriter | None

    def done_tiles(self) -> set[int]:
        """Tiles finished in every catalogue of the run."""
        done = self.work.done_tiles()
        return done & self.scores.done_tiles() if self.scores is not None else done


def run_catalog_dirs(root: paths.PathLike) -> tuple[UPath, UPath, UPath]:
    """The catalogues a run directory can hold: candidates, scores and the work catalogue."""
    return paths.catalog_dir(root, kind="candidates"), paths.catalog_dir(root, kind="scores"), paths.work_dir(root)


def _holds_files(directory: UPath) -> bool:
    return directory.exists() and any(True for _ in directory.iterdir())


@dataclass(frozen=True, eq=False)
class ResumePlan:
    """What a run may do with its output directory, decided once before any compute.

    Attributes
    ----------
    args : SurveyArguments
        The run (``output``, ``resume``, ``overwrite`` and what the catalogues hold).
    root : UPath
        The output directory, proven writable.
    finished : RunManifest or None
        With ``--resume``, the manifest of a run that already finished with these settings:
        there is nothing to do. None otherwise.
    previous_run_ids : list of str
        With ``--resume``, the runs that worked on this output before (oldest first).
    """

    args: SurveyArguments
    root: UPath
    finished: RunManifest | None
    previous_run_ids: list[str]

    @classmethod
    def prepare(cls, args: SurveyArguments, *, provenance: Mapping[str, object]) -> ResumePlan:
        """Check the output directory against ``--resume`` / ``--overwrite`` without changing it.

        Raises
        ------
        BadInputError
            The output cannot be written, holds another run (or foreign files to
            overwrite), or holds a finished run made with other settings.
        """
        root = check_writable(args.output)
        for catalog in run_catalog_dirs(root):
            if not _holds_files(catalog):
                continue
            if args.overwrite and not is_halo_catalog(catalog):
                raise BadInputError(str(catalog), "overwrite refused: this directory holds files but no halo-survey catalogue")
            if not (args.overwrite or args.resume):
                raise BadInputError(
                    str(catalog),
                    "holds the catalogue of an earlier run; choose another --output, or pass --overwrite or --resume",
                )
        previous = read_manifest(root) if args.resume else None
        finished = cls._finished_run(args, root, previous, provenance) if args.resume else None
        return cls(args, root, finished, previous.run_ids if previous is not None else [])

    @staticmethod
    def _finished_run(args: SurveyArguments, root: UPath, previous: RunManifest | None,
                      provenance: Mapping[str, object]) -> RunManifest | None:
        """The manifest of a finished run in ``root`` made with ``provenance``; None if the run is not finished."""
        complete = paths.properties_file(paths.catalog_dir(root, kind="candidates")).exists()
        if not complete or paths.run_state_file(paths.work_dir(root)).exists():
            return None
        if previous is None:
            raise BadInputError(str(args.output), "holds a finished catalogue but no manifest.json; nothing to resume")
        check_same_settings(previous.provenance, provenance, where=str(args.output), what="the finished run there",
                            fix="pass --overwrite to redo it with the new settings, or choose another --output")
        return previous

    @property
    def run_ids(self) -> list[str]:
        """Every run that worked on this output, this one last."""
        return [*self.previous_run_ids, self.args.run_id]

    def open(self, *, provenance: Mapping[str, object]) -> Outputs:
        """Delete our old catalogues (``--overwrite``) and open the work (and scores) writers."""
        if self.args.overwrite:
            for catalog in run_catalog_dirs(self.root):
                if _holds_files(catalog):
                    remove_directory(catalog)
        options = {"order": self.args.tile_order, "provenance": provenance, "resume": self.args.resume}
        work = CatalogWriter(paths.work_dir(self.root), kind="candidates", with_cutout=self.args.store_cutouts,
                             catalog_name=WORK_CATALOG_NAME, compression_level=SCRATCH_COMPRESSION_LEVEL, **options)
        scores = (CatalogWriter(paths.catalog_dir(self.root, kind="scores"), kind="scores", **options)
                  if self.args.all_scores else None)
        return Outputs(self.root, work, scores)

    @staticmethod
    def pending(work: WorkPlan, outputs: Outputs) -> tuple[set[int], list[int]]:
        """Tiles of the plan finished before (in every catalogue), and the ones left to do, in plan order."""
        done = outputs.done_tiles() & set(work.rows_per_tile)
        return done, [int(t) for t in np.asarray(work.tiles) if int(t) not in done]

    @staticmethod
    def is_complete(work: WorkPlan, outputs: Outputs, *, failed: int) -> bool:
        """Every planned tile is written, and none failed in this run.

        Parameters
        ----------
        work : WorkPlan
            The run's plan; its tiles are the keys of ``rows_per_tile``.
        outputs : Outputs
            The open catalogues, whose done markers say which tiles are written.
        failed : int
            Tiles that failed in this run.

        Returns
        -------
        bool
            True when ``failed`` is 0 and every planned tile is done in every catalogue.
        """
        return not failed and set(work.rows_per_tile) <= outputs.done_tiles()

    def clean_up(self) -> None:
        """Remove the work directory of a complete run: what is left is the run's final output."""
        work = paths.work_root(self.root)
        if work.exists():
            work.fs.rm(str(work.path), recursive=True)
