"""The writing-system check that decides whether an embedder can read a query."""

from __future__ import annotations

from lmstack.retrieve.scripts import writing_system


def test_scripts_of_everyday_text():
    assert writing_system("How does Python group statements?") == "latin"
    assert writing_system("Où est la bibliothèque ?") == "latin"
    assert writing_system("《战国无双3》是由哪两个公司合作开发的？") == "cjk"
    assert writing_system("Привет, как дела?") == "other"
    assert writing_system("1234 !?") == "other"


def test_a_chinese_question_naming_latin_words_is_still_chinese():
    assert writing_system("如何在GPU上运行Python程序？") == "cjk"  # 8 Han characters, 2 Latin words
    assert writing_system("Run the 程序 with Python on a GPU") == "latin"
