"""Output distributions and mixture density networks (slides 11-14).

Bishop, "Mixture Density Networks", 1994: a network whose output is a distribution fits
multi-valued targets that a regression network (one Gaussian, or MSE = its mean) averages away.
"""
from __future__ import annotations

from typing import Any

from .core import Conditions, Context, lecture_figure, shared_run
from .shared import toy


@shared_run("mdn-sine")
def _mdn_sine(ctx: Context):
    return ("mdn", {"x_dim": 1, "y_dim": 1, "hidden_dims": [32, 32], "num_components": 3}, toy(ctx, "inverse-sine", 4000),
            {"max_steps": ctx.pick(2000, 6000), "batch_size": 128, "lr": 1e-2, "lr_schedule": "cosine"})


@shared_run("gaussian-sine")
def _gaussian_sine(ctx: Context):
    return ("regressor", {"x_dim": 1, "y_dim": 1, "hidden_dims": [32, 32]}, toy(ctx, "inverse-sine", 4000),
            {"max_steps": ctx.pick(2000, 6000), "batch_size": 128, "lr": 1e-2, "lr_schedule": "cosine"})


def _check_sine(n: dict[str, Any], budget: str) -> Conditions:
    mdn, gauss = n["nll/MDN (K=3)"], n["nll/single Gaussian"]
    return [(f"MDN test NLL {mdn:.3f} is at least 0.2 nats below the single Gaussian's {gauss:.3f}", mdn < gauss - 0.2)]


@lecture_figure("mdn-vs-gaussian", slides="11-14",
                claim="On the inverted sinusoid (several t for one x) a 3-component MDN models p(t | x) far better "
                      "than one Gaussian, whose mean runs between the branches.",
                check=_check_sine)
def mdn_vs_gaussian(ctx: Context) -> dict[str, Any]:
    from ..reports.mdn import evaluate_conditional, plot_conditional_density

    test = toy(ctx, "inverse-sine", 2000, "test")
    models = {"MDN (K=3)": ctx.shared("mdn-sine"), "single Gaussian": ctx.shared("gaussian-sine")}
    path = plot_conditional_density(models, test, ctx.out / "mdn-vs-gaussian.png")
    return {"paths": [str(path)], **{f"nll/{k}": evaluate_conditional(m, test)["nll"] for k, m in models.items()}}


@shared_run("mdn-arm")
def _mdn_arm(ctx: Context):
    # the MDN configuration of benchmarks/robot_arm.py
    return ("mdn", {"x_dim": 2, "y_dim": 2, "hidden_dims": [128, 128], "num_components": 5},
            toy(ctx, "robot-arm", ctx.pick(5000, 10000)),
            {"max_steps": ctx.pick(3000, 15000), "batch_size": 128, "lr": 3e-3, "lr_schedule": "cosine",
             "warmup_steps": ctx.pick(100, 500)})


@shared_run("mse-arm")
def _mse_arm(ctx: Context):
    return ("regressor", {"x_dim": 2, "y_dim": 2, "hidden_dims": [64, 64], "likelihood": "mse"},
            toy(ctx, "robot-arm", ctx.pick(5000, 10000)),
            {"max_steps": ctx.pick(1500, 4000), "batch_size": 128, "lr": 3e-3, "lr_schedule": "cosine"})


def _check_arm(n: dict[str, Any], budget: str) -> Conditions:
    need = 0.9 if budget == "smoke" else 0.99
    mdn, mse = n["mdn/reach_rate_two_solutions"], n["mse_net/reach_rate_two_solutions"]
    return [(f"MDN's most probable angles reach {mdn:.1%} of the two-solution targets (>= {need:.0%})", mdn >= need),
            (f"the MSE net reaches only {mse:.1%} of them, at least 15 points fewer", mse <= mdn - 0.15)]


@lecture_figure("robot-arm", slides="12",
                claim="For robot-arm inverse kinematics (elbow up or down) the MDN's modes are both true solutions "
                      "and its best mode reaches the target; the MSE net predicts the average of two solutions, "
                      "which misses.",
                check=_check_arm, smoke_note="smoke: 3,000 MDN steps and a 90 % reach threshold (full: 15,000, 99 %)",
                run="an MDN run on robot-arm data, in place of mdn-arm")
def robot_arm(ctx: Context) -> dict[str, Any]:
    from ..reports.mdn import evaluate_conditional, plot_arm_modes

    test = toy(ctx, "robot-arm", 2000, "test")
    model = ctx.given_run("mdn")
    model = ctx.shared("mdn-arm") if model is None else model
    baseline = ctx.shared("mse-arm")
    path = plot_arm_modes(model, test, ctx.out / "robot-arm.png", baseline=baseline)
    numbers = {f"mdn/{k}": v for k, v in evaluate_conditional(model, test).items()}
    numbers.update({f"mse_net/{k}": v for k, v in evaluate_conditional(baseline, test).items()})
    return {"paths": [str(path)], **numbers}
