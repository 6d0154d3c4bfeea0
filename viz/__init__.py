"""viz: a gradient-checked NumPy reference for convolutions and recurrent networks.

Importing viz loads NumPy only; Graphviz and Manim load in the commands that render.
"""
__version__ = "0.1.0"
