"""Mixture density network on robot-arm inverse kinematics: one end position, two joint-angle answers.

    python examples/mdn_robot_arm.py        # ~2 minutes on 2 CPU cores

Trains an MDN and a single-Gaussian network on the same data and reports the fraction of test targets
each one reaches (forward kinematics of the predicted angles within 0.05 of the target); the single
Gaussian averages elbow-up and elbow-down answers where both exist and misses those targets.
"""
from genlab.data import load_dataset
from genlab.reports.mdn import plot_arm_modes
from genlab.models import build_model
from genlab.reports.mdn import evaluate_conditional
from genlab.training import TrainConfig, Trainer

train, test = load_dataset("robot-arm", "train"), load_dataset("robot-arm", "test")
config = TrainConfig(max_steps=6000, batch_size=128, lr=3e-3, lr_schedule="cosine", warmup_steps=500,
                     eval_every=500, keep_best="loss", progress=True)
models = {
    "MDN (5 Gaussians)": build_model("mdn", {"x_dim": 2, "y_dim": 2, "num_components": 5, "hidden_dims": [128, 128]}),
    "single Gaussian": build_model("regressor", {"x_dim": 2, "y_dim": 2, "hidden_dims": [128, 128]}),
}
for name, model in models.items():
    trainer = Trainer(model, train, config, eval_data=test)
    trainer.fit()
    trainer.restore_best()
    m = evaluate_conditional(model.eval(), test)
    print(f"{name:18s} reached {100 * m['reach_rate']:.1f}% of targets, "
          f"{100 * m['reach_rate_two_solutions']:.1f}% of those with two solutions")
plot_arm_modes(models["MDN (5 Gaussians)"], test, "runs/example-mdn-robot-arm.png", baseline=models["single Gaussian"])
print("wrote runs/example-mdn-robot-arm.png")
