"""Building: the parts a network and its compile step are made of.

Model builders looked up by `model.type` (`models`), losses by name with the custom
ones (`losses`), optimizers (`optimizers`) and learning-rate schedules
(`schedules`). Each turns a config section into a Keras object.
"""
