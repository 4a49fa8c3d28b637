"""One process of the multi-process annotation test (launched by test_sharded_annotation.py with torchrun; not
collected by pytest): `pite annotate` with the colour stand-ins of conftest.py instead of the three models.

argv: the `pite annotate` arguments, optionally preceded by `--hang VIDEO_ID`: this process then writes its pid to
`OUT.hanging-pid` and sleeps when it reaches that video, for the test to kill it there.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import ColourMasker, ColourPropagator  # noqa: E402

import pite.annotation.cli as annotation_cli  # noqa: E402
from pite.annotation import AnnotationPipeline, AnnotatorConfig, RuleBasedNounPhraseExtractor  # noqa: E402
from pite.cli.main import main  # noqa: E402


class HangingPipeline(AnnotationPipeline):
    hang_on: str | None = None
    pid_file: str = ""

    def annotate(self, video, path):  # noqa: ANN001, ANN201
        if video.video_id == self.hang_on:
            with open(self.pid_file, "w", encoding="utf-8") as handle:
                handle.write(str(os.getpid()))
            time.sleep(600)
        return super().annotate(video, path)


def stand_in_pipeline(args) -> AnnotationPipeline:  # noqa: ANN001
    return HangingPipeline(
        RuleBasedNounPhraseExtractor(), ColourMasker(), ColourPropagator(), AnnotatorConfig(num_frames=args.num_frames)
    )


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--hang"]:
        HangingPipeline.hang_on, arguments = arguments[1], arguments[2:]
    HangingPipeline.pid_file = arguments[arguments.index("--out") + 1] + ".hanging-pid"
    annotation_cli.build_pipeline = stand_in_pipeline
    sys.exit(main(["annotate", *arguments]))
