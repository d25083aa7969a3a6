from tests._jax_compilation import speed_up_jax_compilation

speed_up_jax_compilation()
