"""`lmstack learn`: the roadmap's principles (foundations, CNN, RNN, T5, ...) one runnable topic
each; a topic fits or trains, compares with the reference library and writes a short report."""

from lmstack.learn.registry import Topic, all_topics, find_topic

__all__ = ["Topic", "all_topics", "find_topic"]
