"""`lmstack demo`: the roadmap end to end on one laptop, one module per stage, one report.

Stages register themselves by file name (registry.py); run.py runs them and writes the report.
"""

from lmstack.demo.corpus import find_shared_data, load_corpus, stdlib_corpus
from lmstack.demo.registry import Stage, all_stages, select_stages
from lmstack.demo.run import DemoRun, run_demo

__all__ = ["DemoRun", "Stage", "all_stages", "find_shared_data", "load_corpus", "run_demo",
           "select_stages", "stdlib_corpus"]
