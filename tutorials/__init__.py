"""The course: tutorials/NN_*.md, their exercise checks (exercises/) and solutions (solutions/)."""
