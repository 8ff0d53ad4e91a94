"""TIMIT preparation for the recipes in this folder.

The implementation lives in the package (``speechbrain_fdnf.data.timit``) so
that other recipes can reuse it; this module keeps the SpeechBrain convention
of a ``<corpus>_prepare.py`` beside the training script.

Usage from a recipe::

    from timit_prepare import prepare_timit
    prepare_timit(data_folder="/data/TIMIT", save_folder="results/prep")
"""

from speechbrain_fdnf.data.timit import CORE_TEST_SPEAKERS, TimitError, prepare_timit  # noqa: F401

if __name__ == "__main__":
    import argparse
    import logging

    parser = argparse.ArgumentParser(description="Prepare TIMIT into SpeechBrain JSON annotations")
    parser.add_argument("data_folder")
    parser.add_argument("save_folder")
    parser.add_argument("--keep-sa", action="store_true", help="keep SA1/SA2")
    parser.add_argument("--test-set", choices=("full", "core"), default="full")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    prepare_timit(args.data_folder, args.save_folder, exclude_sa=not args.keep_sa, test_set=args.test_set)
